/*
 * The policy options of `run` and `dropin`, generated from the shim's option
 * table so that every NUMASHIM_* variable has a flag (NUMASHIM_INTERLEAVE_MIN
 * -> --interleave-min) and a new variable needs no change here. Values are
 * validated with the shim's own parser (policy_config_from_env), so the tool
 * refuses exactly what the shim would warn about.
 */
#include "tools/tool.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

#ifndef NUMASHIM_INSTALLED_LIB
#define NUMASHIM_INSTALLED_LIB "/usr/local/lib/libnumashim.so"
#endif

static char longnames[TOOL_MAX_SETTINGS][64];

const char *tool_optname(const char *var, char *buf, size_t len)
{
	const char *s = var;
	size_t i = 0;

	if (strncmp(s, "NUMASHIM_", 9) == 0)
		s += 9;
	for (; *s && i + 1 < len; s++, i++)
		buf[i] = *s == '_' ? '-' : (char)tolower((unsigned char)*s);
	buf[i] = '\0';
	return buf;
}

/* A boolean option (values "0|1") may be given as a bare flag. */
static bool is_flag(const struct policy_option *o)
{
	return strcmp(o->values, "0|1") == 0;
}

size_t tool_policy_longopts(struct option *opts, size_t room)
{
	size_t k = 0;

	for (size_t i = 0; i < policy_option_count && i < TOOL_MAX_SETTINGS &&
	     k + 2 < room; i++) {
		const struct policy_option *o = &policy_options[i];

		tool_optname(o->name, longnames[i], sizeof(longnames[i]));
		opts[k].name = longnames[i];
		opts[k].has_arg = is_flag(o) ? optional_argument : required_argument;
		opts[k].flag = NULL;
		opts[k].val = TOOL_OPT_POLICY_BASE + (int)i;
		k++;
	}
	if (k + 1 < room) {
		opts[k] = (struct option){ "lib", required_argument, NULL, TOOL_OPT_LIB };
		k++;
	}
	opts[k] = (struct option){ 0, 0, 0, 0 };
	return k;
}

bool tool_policy_opt(int c, const char *arg, struct tool_settings *s)
{
	const struct policy_option *o;
	size_t i;

	if (c == TOOL_OPT_LIB) {
		s->lib = arg;
		return true;
	}
	if (c < TOOL_OPT_POLICY_BASE ||
	    (size_t)(c - TOOL_OPT_POLICY_BASE) >= policy_option_count)
		return false;
	o = &policy_options[c - TOOL_OPT_POLICY_BASE];
	if (arg == NULL)
		arg = "1";
	for (i = 0; i < s->n; i++)
		if (s->name[i] == o->name)
			break;
	if (i == s->n) {
		if (s->n == TOOL_MAX_SETTINGS)
			return true;
		s->n++;
	}
	s->name[i] = o->name;
	s->value[i] = arg;
	return true;
}

struct first_problem {
	bool seen;
	char line[512];
};

static void warn_first(void *ctx, const char *var, const char *value,
		       const char *why, const char *fallback)
{
	struct first_problem *p = ctx;
	char opt[64];
	char clean[96];

	(void)fallback;
	if (p->seen)
		return;
	p->seen = true;
	tool_clean(value, clean, sizeof(clean));
	snprintf(p->line, sizeof(p->line), "--%s \"%s\" (%s): %s",
		 tool_optname(var, opt, sizeof(opt)), clean, var, why);
}

int tool_validate(const struct tool_settings *s)
{
	char *env[TOOL_MAX_SETTINGS + 1];
	struct policy_config cfg;
	struct first_problem p = { false, "" };
	int rc = 0;

	for (size_t i = 0; i < s->n; i++) {
		char opt[64];

		for (const char *c = s->value[i]; *c; c++) {
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				tool_err("--%s: the value holds a control character",
					 tool_optname(s->name[i], opt, sizeof(opt)));
				return -EINVAL;
			}
		}
		/* No value of the table is, and systemd would ignore the
		 * drop-in's whole Environment= line. */
		if (!tool_utf8_ok(s->value[i])) {
			tool_err("--%s: the value is not valid UTF-8",
				 tool_optname(s->name[i], opt, sizeof(opt)));
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		size_t len = strlen(s->name[i]) + strlen(s->value[i]) + 2;

		env[i] = malloc(len);
		if (env[i] == NULL) {
			tool_err("out of memory");
			for (size_t j = 0; j < i; j++)
				free(env[j]);
			return -ENOMEM;
		}
		snprintf(env[i], len, "%s=%s", s->name[i], s->value[i]);
	}
	env[s->n] = NULL;
	if (policy_config_from_env(env, &cfg, warn_first, &p) > 0) {
		tool_err("%s", p.line);
		rc = -EINVAL;
	}
	for (size_t i = 0; i < s->n; i++)
		free(env[i]);
	return rc;
}

/*
 * A usable preload path: an existing regular file, absolute, and free of
 * the characters that split LD_PRELOAD (space, colon). For a service
 * (dropin) it need not exist here, and must be valid UTF-8 without
 * control characters: systemd ignores an Environment= line that is not
 * ("not UTF-8 clean") or that a carriage return cuts, and the service
 * would run without the shim.
 */
static int usable(const char *path, bool for_service, char *out, size_t len,
		  const char *from)
{
	char real[PATH_MAX], clean[PATH_MAX];
	struct stat st;

	if (stat(path, &st) != 0) {
		if (!for_service) {
			tool_err("%s: %s (%s): %s", from, path, "the shim library",
				 strerror(errno));
			return -ENOENT;
		}
		snprintf(real, sizeof(real), "%s", path);
	} else if (!S_ISREG(st.st_mode)) {
		tool_err("%s: %s: not a regular file", from, path);
		return -EINVAL;
	} else if (realpath(path, real) == NULL) {
		tool_err("%s: %s: %s", from, path, strerror(errno));
		return -ENOENT;
	}
	if (real[0] != '/' || strpbrk(real, " :\t\n") != NULL) {
		tool_err("%s: %s: LD_PRELOAD needs an absolute path without "
			 "spaces or colons", from, real);
		return -EINVAL;
	}
	/* systemd ends a unit file's line at a carriage return too: the
	 * LD_PRELOAD line would be cut in two and ignored. */
	for (const char *c = real; for_service && *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			tool_clean(real, clean, sizeof(clean));
			tool_err("%s: %s: holds a control character (systemd would "
				 "cut the Environment= line)", from, clean);
			return -EINVAL;
		}
	}
	if (for_service && !tool_utf8_ok(real)) {
		tool_clean(real, clean, sizeof(clean));
		tool_err("%s: %s: not valid UTF-8 (systemd would ignore the "
			 "Environment= line)", from, clean);
		return -EINVAL;
	}
	if (strlen(real) >= len) {
		tool_err("%s: %s: path too long", from, real);
		return -ENAMETOOLONG;
	}
	snprintf(out, len, "%s", real);
	return 0;
}

int tool_find_lib(const char *given, bool for_service, char *out, size_t len)
{
	static const char *const rel[] = {
		"/../shim/.libs/libnumashim.so",    /* tools/numashim */
		"/../../shim/.libs/libnumashim.so", /* tools/.libs/numashim */
	};
	const char *env = getenv("NUMASHIM_LIB");
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n;

	if (given)
		return usable(given, for_service, out, len, "--lib");
	if (env && *env)
		return usable(env, for_service, out, len, "NUMASHIM_LIB");
	/* A service gets the installed library, present here or not (the
	 * drop-in may be meant for another machine). */
	if (for_service) {
		if (access(NUMASHIM_INSTALLED_LIB, R_OK) != 0)
			fprintf(stderr, TOOL_NAME ": note: %s is not installed on "
				"this machine (make install, or pass --lib PATH)\n",
				NUMASHIM_INSTALLED_LIB);
		return usable(NUMASHIM_INSTALLED_LIB, true, out, len,
			      "installed library");
	}
	/* A numashim run from its build tree uses that tree's shim, not an
	 * older installed one. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
			if (access(cand, R_OK) == 0)
				return usable(cand, false, out, len, "build tree");
		}
	}
	if (access(NUMASHIM_INSTALLED_LIB, R_OK) == 0)
		return usable(NUMASHIM_INSTALLED_LIB, false, out, len,
			      "installed library");
	tool_err("cannot find libnumashim.so (not installed as %s, not in a "
		 "build tree next to this program): pass --lib PATH or set "
		 "NUMASHIM_LIB", NUMASHIM_INSTALLED_LIB);
	return -ENOENT;
}

/*
 * The long option of `opts` that `arg` ("--NAME=VALUE", NAME perhaps
 * abbreviated) names, if it takes no value and getopt reported it by its
 * val `opt`: glibc reports such an option by setting optopt to its val,
 * exactly as it reports an unknown short option -<val>. NULL for anything
 * else, such as an unknown short option that followed a --NAME=VALUE.
 */
static const struct option *valued_flag(const char *arg, int opt,
					 const struct option *opts)
{
	const struct option *found = NULL;
	size_t n;

	if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') == NULL)
		return NULL;
	arg += 2;
	n = strcspn(arg, "=");
	for (; opts->name; opts++) {
		if (opts->has_arg != no_argument || opts->flag || opts->val != opt ||
		    strncmp(opts->name, arg, n) != 0)
			continue;
		if (opts->name[n] == '\0')
			return opts; /* exact */
		if (found == NULL)
			found = opts;
	}
	return found;
}

int tool_badopt(const char *cmd, int c, char **argv,
		const struct option *opts)
{
	/* The argument getopt stopped at, or (a short option within a
	 * group, "-jZ") the one before it: a short option is named by
	 * optopt instead. Cleaned: it may hold any byte. */
	char bad[256], short_opt[3], opt[8];
	const struct option *flag;
	const char *raw = argv[optind - 1];

	tool_clean(raw, bad, sizeof(bad));
	snprintf(short_opt, sizeof(short_opt), "-%c",
		 optopt > 0 && optopt < 256 ? optopt : '?');
	tool_clean(short_opt, opt, sizeof(opt));
	if (c == ':' && strncmp(raw, "--", 2) == 0)
		tool_err("%s: %s needs a value (see numashim %s --help)", cmd, bad,
			 cmd);
	else if (c == ':')
		tool_err("%s: %s needs a value (see numashim %s --help)", cmd, opt,
			 cmd);
	else if (optopt && (flag = valued_flag(raw, optopt, opts)) != NULL)
		tool_err("%s: %s: --%s takes no value (see numashim %s --help)",
			 cmd, bad, flag->name, cmd);
	else if (optopt && optopt < 256)
		tool_err("%s: unknown option %s (see numashim %s --help)", cmd,
			 opt, cmd);
	else
		tool_err("%s: unknown or ambiguous option %s (see numashim "
			 "%s --help)", cmd, bad, cmd);
	return TOOL_USAGE;
}

void tool_print_policy_usage(FILE *f, bool for_service)
{
	for (size_t i = 0; i < policy_option_count; i++) {
		const struct policy_option *o = &policy_options[i];
		char opt[64], left[128];

		tool_optname(o->name, opt, sizeof(opt));
		if (is_flag(o))
			snprintf(left, sizeof(left), "--%s[=0|1]", opt);
		else
			snprintf(left, sizeof(left), "--%s VALUE", opt);
		fprintf(f, "  %-28s %s (default %s)\n", left, o->name, o->def);
	}
	/* As tool_find_lib looks: a service never gets the build tree's. */
	fprintf(f, "  %-28s %s%s%s\n", "--lib PATH",
		"the shim library (default: NUMASHIM_LIB, ",
		for_service ? "" : "the build tree, ",
		"or " NUMASHIM_INSTALLED_LIB ")");
}
