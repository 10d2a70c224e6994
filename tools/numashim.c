/*
 * numashim — the command-line tool of the numashim allocator shim:
 * run a program under it, read its live per-node stats, make a systemd
 * drop-in, and list its environment variables (from the shim's own option
 * table, so the list cannot drift from what the shim parses).
 */
#include "tools/tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy/policy.h"

static void verr(FILE *f, const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs(TOOL_NAME ": ", f);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
}

void tool_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(stderr, fmt, ap);
	va_end(ap);
}

void tool_ferr(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(f, fmt, ap);
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: numashim COMMAND [OPTIONS] [ARGS]\n\n"
		"NUMA-aware placement for unmodified programs: libnumashim.so, "
		"preloaded, keeps\neach thread's heap on the node it runs on. "
		"This command drives it.\n\n"
		"Commands:\n"
		"  run [OPTIONS] -- CMD ARGS   run CMD under the shim, with the "
		"policy OPTIONS\n"
		"  stat [PID...|--all]         per-node stats of processes under "
		"the shim\n"
		"       [--watch SECS] [--json] [--prometheus [--output FILE]] "
		"[--gc] [--dir DIR]\n"
		"  dropin SERVICE [--write]    a systemd drop-in running SERVICE "
		"under the shim\n"
		"  doctor [PID...]             the host's NUMA health and where "
		"PIDs' memory is,\n"
		"       [--interval SECS] [--json]  each finding rated, with a fix\n"
		"  help env                    every NUMASHIM_* variable, its "
		"default and meaning\n"
		"  help COMMAND                the options of COMMAND\n\n"
		"  -h, --help                  this text\n"
		"  -V, --version               the version\n\n"
		"See numashim(1).\n");
}

/* Wrap `text` at `width` columns, each line indented by `indent`. */
static void wrap(FILE *f, const char *text, int indent, int width)
{
	const char *p = text;

	while (*p) {
		int room = width - indent, n = 0, cut = 0;

		while (p[n] && n < room) {
			if (p[n] == ' ')
				cut = n;
			n++;
		}
		if (p[n] == '\0')
			cut = n;
		else if (cut == 0)
			cut = n;
		fprintf(f, "%*s%.*s\n", indent, "", cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

/* troff-safe text: backslash and hyphen escaped, no control line. */
static void troff_text(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

static void help_env_troff(FILE *f)
{
	for (size_t i = 0; i < policy_option_count; i++) {
		const struct policy_option *o = &policy_options[i];
		char opt[64];

		fprintf(f, ".TP\n.B %s\n", o->name);
		fputs("Values: \\fI", f);
		troff_text(f, o->values);
		fputs("\\fR; default: \\fB", f);
		troff_text(f, o->def);
		fputs("\\fR; \\fBnumashim run\\fR option: \\fB\\-\\-", f);
		troff_text(f, tool_optname(o->name, opt, sizeof(opt)));
		fputs("\\fR.\n.br\n", f);
		troff_text(f, o->help);
		fputc('\n', f);
	}
}

int cmd_help_env(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--troff") == 0) {
		help_env_troff(stdout);
		return TOOL_OK;
	}
	if (argc > 1) {
		tool_err("help env: unknown argument \"%s\" (only --troff)", argv[1]);
		return TOOL_USAGE;
	}
	printf("numashim reads these variables from the environment of the "
	       "program it is\npreloaded into (numashim run and dropin set them "
	       "with the options shown).\nA bad value is reported on one line "
	       "and the default is used.\n\n");
	for (size_t i = 0; i < policy_option_count; i++) {
		const struct policy_option *o = &policy_options[i];
		char opt[64];

		printf("%s\n    default: %s\n    values:  %s\n    option:  --%s\n",
		       o->name, o->def, o->values,
		       tool_optname(o->name, opt, sizeof(opt)));
		wrap(stdout, o->help, 4, 78);
		putchar('\n');
	}
	printf("NUMASHIM_LIB is read by numashim run (the library to preload), "
	       "not by the shim.\n"
	       "NUMASHIM_NO_APT=1 is read by the source tree's ./dev (skip "
	       "installing packages),\nnot by the shim.\n");
	return TOOL_OK;
}

static int help(int argc, char **argv)
{
	static char help_opt[] = "--help";
	char *sub[] = { argv[1], help_opt, NULL };

	if (argc < 2) {
		usage(stdout);
		return TOOL_OK;
	}
	if (strcmp(argv[1], "env") == 0)
		return cmd_help_env(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(2, sub);
	if (strcmp(argv[1], "stat") == 0)
		return cmd_stat(2, sub);
	if (strcmp(argv[1], "dropin") == 0)
		return cmd_dropin(2, sub);
	if (strcmp(argv[1], "doctor") == 0)
		return cmd_doctor(2, sub);
	tool_err("help: no help on \"%s\" (try: env, run, stat, dropin, doctor)",
		 argv[1]);
	return TOOL_USAGE;
}

/*
 * A command's status, failed when its standard output could not be
 * written: `numashim dropin SVC > .../numashim.conf` on a full disk, or
 * `stat --prometheus > file`, must not exit 0 over an empty or cut file
 * (the service would then run without the shim, unnoticed).
 */
static int close_stdout(int rc)
{
	int e;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return rc;
	e = errno;
	fprintf(stderr, TOOL_NAME ": standard output: %s\n",
		e ? strerror(e) : "write error");
	return rc ? rc : TOOL_FAIL;
}

static int dispatch(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		tool_err("no command given (run, stat, dropin, doctor or help; see "
			 "numashim --help)");
		return TOOL_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
		return usage(stdout), TOOL_OK;
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0 ||
	    strcmp(cmd, "version") == 0) {
		printf("numashim %s (stats layout version %d)\n", PACKAGE_VERSION,
		       NS_STATS_VERSION);
		return TOOL_OK;
	}
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(cmd, "stat") == 0)
		return cmd_stat(argc - 1, argv + 1);
	if (strcmp(cmd, "dropin") == 0)
		return cmd_dropin(argc - 1, argv + 1);
	if (strcmp(cmd, "doctor") == 0)
		return cmd_doctor(argc - 1, argv + 1);
	if (strcmp(cmd, "help") == 0)
		return help(argc - 1, argv + 1);
	if (cmd[0] == '-')
		tool_err("unknown option %s (see numashim --help)", cmd);
	else
		tool_err("unknown command \"%s\" (see numashim --help)", cmd);
	return TOOL_USAGE;
}

int main(int argc, char **argv)
{
	return close_stdout(dispatch(argc, argv));
}
