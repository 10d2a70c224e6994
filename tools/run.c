/*
 * `numashim run` (exec a command under the shim) and `numashim dropin`
 * (a systemd drop-in that does the same for a service).
 */
#include "tools/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

#define MAX_LONGOPTS (TOOL_MAX_SETTINGS + 8)

static void run_usage(FILE *f)
{
	fprintf(f, "usage: numashim run [OPTIONS] [--] CMD [ARGS...]\n"
		"Run CMD with LD_PRELOAD=libnumashim.so (put before an existing "
		"LD_PRELOAD)\nand the NUMASHIM_* variables the options set.\n\n"
		"Options (each sets the variable named; see numashim help env):\n");
	tool_print_policy_usage(f, false);
	fprintf(f, "  %-28s %s\n", "-h, --help", "this text");
}

/* Is `tok` (len bytes) some libnumashim.so? */
static bool is_shim(const char *tok, size_t len)
{
	static const char so[] = "libnumashim.so";
	const char *base = tok;

	for (size_t i = 0; i < len; i++)
		if (tok[i] == '/')
			base = tok + i + 1;
	len -= (size_t)(base - tok);
	return len >= sizeof(so) - 1 && strncmp(base, so, sizeof(so) - 1) == 0;
}

/* LD_PRELOAD with `lib` first; another copy of the shim is dropped (two
 * shims would be two heaps). */
static char *preload_value(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t len = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *v = malloc(len);
	size_t at;

	if (v == NULL)
		return NULL;
	at = (size_t)snprintf(v, len, "%s", lib);
	while (old && *old) {
		size_t n = strcspn(old, " :");

		if (n && !is_shim(old, n)) {
			v[at++] = ':';
			memcpy(v + at, old, n);
			at += n;
		}
		old += n;
		old += strspn(old, " :");
	}
	v[at] = '\0';
	return v;
}

int cmd_run(int argc, char **argv)
{
	struct option opts[MAX_LONGOPTS];
	struct tool_settings s = { 0 };
	char lib[PATH_MAX], *preload;
	size_t k;
	int c;

	k = tool_policy_longopts(opts, MAX_LONGOPTS - 1);
	opts[k++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[k] = (struct option){ 0, 0, 0, 0 };
	optind = 0;
	opterr = 0;
	/* '+': options stop at the command, whose own options are its own. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h') {
			run_usage(stdout);
			return TOOL_OK;
		}
		if (!tool_policy_opt(c, optarg, &s))
			return tool_badopt("run", c, argv, opts);
	}
	if (optind >= argc) {
		tool_err("run: no command given (numashim run [OPTIONS] -- CMD "
			 "[ARGS...])");
		return TOOL_USAGE;
	}
	if (tool_validate(&s) || tool_find_lib(s.lib, false, lib, sizeof(lib)))
		return TOOL_USAGE;
	for (size_t i = 0; i < s.n; i++) {
		if (setenv(s.name[i], s.value[i], 1)) {
			tool_err("run: cannot set %s: %s", s.name[i], strerror(errno));
			return TOOL_FAIL;
		}
	}
	preload = preload_value(lib);
	if (preload == NULL || setenv("LD_PRELOAD", preload, 1)) {
		tool_err("run: cannot set LD_PRELOAD: out of memory");
		return TOOL_FAIL;
	}
	free(preload);
	execvp(argv[optind], argv + optind);
	c = errno;
	tool_err("run: %s: cannot run: %s", argv[optind], strerror(c));
	return c == ENOENT ? 127 : 126;
}

/* ------------------------------------------------------------ dropin */

static void dropin_usage(FILE *f)
{
	fprintf(f, "usage: numashim dropin SERVICE [--write [--root DIR]] "
		"[OPTIONS]\nPrint a systemd drop-in that runs SERVICE under "
		"numashim, or write it to\n/etc/systemd/system/SERVICE.service.d/"
		"numashim.conf (--write).\n\n"
		"  %-28s %s\n  %-28s %s\n", "--write", "write the file (creating "
		"the directory) instead of printing it", "--root DIR",
		"write under DIR instead of / (for images and tests)");
	tool_print_policy_usage(f, true);
	fprintf(f, "  %-28s %s\n", "-h, --help", "this text");
}

/* systemd unit name: letters, digits, ":-_.\" and '@' for templates; the
 * ".service" suffix is optional. Returns the unit name in buf or NULL. */
static const char *unit_name(const char *svc, char *buf, size_t len)
{
	static const char suffix[] = ".service";
	size_t n = strlen(svc), sl = sizeof(suffix) - 1;
	int ats = 0;

	if (n > sl && strcmp(svc + n - sl, suffix) == 0)
		n -= sl;
	if (n == 0 || n + sl > 255 || n + sl >= len)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char ch = svc[i];

		if (ch == '@')
			ats++;
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || strchr(":-_.\\", ch)))
			return NULL;
	}
	if (ats > 1 || svc[0] == '.' || svc[0] == '-' || svc[0] == '@')
		return NULL;
	memcpy(buf, svc, n);
	memcpy(buf + n, suffix, sl + 1);
	return buf;
}

/* Text inside a double-quoted systemd value: \ and " escaped, % doubled
 * (specifiers are expanded in Environment= and Exec lines). */
static void put_quoted(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		else if (*p == '%')
			fputc('%', f);
		fputc(*p, f);
	}
}

/* One Environment= line. */
static void env_line(FILE *f, const char *name, const char *value)
{
	fprintf(f, "Environment=\"%s=", name);
	put_quoted(f, value);
	fputs("\"\n", f);
}

/* The ExecStopPost= line: the installed tool removes the stats segments
 * the service's processes left in /dev/shm. A process that exits removes
 * its own (also by _exit); one that is killed or crashes cannot, and a
 * single-threaded service has no stats helper to sweep them. systemd runs
 * ExecStopPost= however the service ended; "-" keeps a failure of the
 * sweep from failing the unit. */
static void gc_line(FILE *f, const char *tool)
{
	fputs("ExecStopPost=-\"", f);
	put_quoted(f, tool);
	fputs("\" stat --gc\n", f);
}

/*
 * A unit name (or its drop-in's path) as a shell word, for the commands
 * the hints suggest: with an escaped name (systemd-escape's "foo\x2dbar")
 * in single quotes, which a unit name never holds; a shell would read
 * foo\x2dbar as foox2dbar.
 */
static const char *shell_word(const char *s, char *buf, size_t len)
{
	if (strchr(s, '\\') == NULL)
		return s;
	snprintf(buf, len, "'%s'", s);
	return buf;
}

static void write_dropin(FILE *f, const char *unit, const char *lib,
			 const struct tool_settings *s)
{
	char word[304];

	fprintf(f, "# Run %s under numashim (made by `numashim dropin`).\n"
		"# File: /etc/systemd/system/%s.d/numashim.conf, then\n"
		"#   systemctl daemon-reload && systemctl restart %s\n"
		"# Variables: `numashim help env`; live stats: `numashim stat "
		"PID`.\n# ExecStopPost: the stats segments of its processes that "
		"were killed go\n# when it stops.\n[Service]\n", unit, unit,
		shell_word(unit, word, sizeof(word)));
	env_line(f, "LD_PRELOAD", lib);
	/* In table order, whatever the order on the command line. */
	for (size_t i = 0; i < policy_option_count; i++)
		for (size_t j = 0; j < s->n; j++)
			if (s->name[j] == policy_options[i].name)
				env_line(f, s->name[j], s->value[j]);
	gc_line(f, NUMASHIM_INSTALLED_TOOL);
}

/* mkdir -p for the directories of `path`. */
static int make_dirs(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST) {
			int e = errno;

			tool_err("dropin: cannot create %s: %s", path, strerror(e));
			*p = '/';
			return -e;
		}
		*p = '/';
	}
	return 0;
}

/* Where the drop-in of `unit` goes, under root ("" for /); false when
 * the path does not fit. */
static bool dropin_path(char *buf, size_t len, const char *root,
			const char *unit)
{
	return (size_t)snprintf(buf, len, "%s/etc/systemd/system/%s.d/"
				"numashim.conf", root, unit) < len;
}

/* 1 if files a and b hold the same bytes, 0 if not, -1 if a cannot be
 * read (b is ours, just written). */
static int same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "r"), *fb = fa ? fopen(b, "r") : NULL;
	int ca, cb, same = -1;

	if (fa != NULL && fb != NULL) {
		do {
			ca = getc(fa);
			cb = getc(fb);
		} while (ca == cb && ca != EOF);
		same = ferror(fa) ? -1 : ca == cb;
	}
	if (fb != NULL)
		fclose(fb);
	if (fa != NULL)
		fclose(fa);
	return same;
}

static int save_dropin(const char *root, const char *unit, const char *lib,
		       const struct tool_settings *s)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], old[PATH_MAX + 8], word[304];
	bool kept = false;
	FILE *f;
	int fd;

	if (strcmp(root, "/") == 0)
		root = "";
	if (!dropin_path(path, sizeof(path), root, unit)) {
		tool_err("dropin: --root %s: path too long", root);
		return TOOL_USAGE;
	}
	if (make_dirs(path))
		return TOOL_FAIL;
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0 || fchmod(fd, 0644) || (f = fdopen(fd, "w")) == NULL) {
		tool_err("dropin: cannot write %s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return TOOL_FAIL;
	}
	write_dropin(f, unit, lib, s);
	if (fflush(f) || fsync(fd) || ferror(f)) {
		tool_err("dropin: cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return TOOL_FAIL;
	}
	fclose(f);
	/* A drop-in already there is the user's too (edited by hand, or
	 * written with other settings): replaced silently, it was lost. The
	 * same one is left alone; another is kept as numashim.conf.old,
	 * which systemd does not read (only *.conf). */
	if (access(path, F_OK) == 0) {
		int same = same_file(path, tmp);

		if (same == 1) {
			unlink(tmp);
			printf("%s is already this drop-in: unchanged\n", path);
			return TOOL_OK;
		}
		snprintf(old, sizeof(old), "%s.old", path);
		if (same < 0 || rename(path, old)) {
			tool_err("dropin: cannot keep %s as %s: %s; nothing written",
				 path, old, strerror(same < 0 ? EIO : errno));
			unlink(tmp);
			return TOOL_FAIL;
		}
		kept = true;
	}
	if (rename(tmp, path)) {
		tool_err("dropin: cannot rename %s to %s: %s", tmp, path,
			 strerror(errno));
		unlink(tmp);
		if (kept)
			rename(old, path); /* the service keeps its drop-in */
		return TOOL_FAIL;
	}
	if (kept)
		printf("kept the previous drop-in as %s\n", old);
	printf("wrote %s\nnow run: systemctl daemon-reload && systemctl restart "
	       "%s\n", path, shell_word(unit, word, sizeof(word)));
	return TOOL_OK;
}

int cmd_dropin(int argc, char **argv)
{
	struct option opts[MAX_LONGOPTS];
	struct tool_settings s = { 0 };
	const char *root = "/", *svc = NULL;
	char lib[PATH_MAX], unit[300], word[304], file[340], fword[344];
	bool write = false;
	size_t k;
	int c;

	k = tool_policy_longopts(opts, MAX_LONGOPTS - 3);
	opts[k++] = (struct option){ "write", no_argument, NULL, 'w' };
	opts[k++] = (struct option){ "root", required_argument, NULL, 'r' };
	opts[k++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[k] = (struct option){ 0, 0, 0, 0 };
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			dropin_usage(stdout);
			return TOOL_OK;
		} else if (c == 'w') {
			write = true;
		} else if (c == 'r') {
			root = optarg;
		} else if (!tool_policy_opt(c, optarg, &s)) {
			return tool_badopt("dropin", c, argv, opts);
		}
	}
	if (optind >= argc) {
		tool_err("dropin: no service given (numashim dropin SERVICE "
			 "[OPTIONS])");
		return TOOL_USAGE;
	}
	if (argc - optind > 1) {
		tool_err("dropin: one service at a time (got \"%s\" and \"%s\")",
			 argv[optind], argv[optind + 1]);
		return TOOL_USAGE;
	}
	svc = argv[optind];
	if (unit_name(svc, unit, sizeof(unit)) == NULL) {
		char clean[128];

		tool_clean(svc, clean, sizeof(clean));
		tool_err("dropin: \"%s\" is not a systemd service name (letters, "
			 "digits, \":-_.\\\", one \"@\")", clean);
		return TOOL_USAGE;
	}
	if (!write && strcmp(root, "/") != 0) {
		tool_err("dropin: --root only goes with --write");
		return TOOL_USAGE;
	}
	if (root[0] != '/') {
		tool_err("dropin: --root %s: must be an absolute path", root);
		return TOOL_USAGE;
	}
	if (tool_validate(&s) || tool_find_lib(s.lib, true, lib, sizeof(lib)))
		return TOOL_USAGE;
	if (write)
		return save_dropin(root, unit, lib, &s);
	write_dropin(stdout, unit, lib, &s);
	dropin_path(file, sizeof(file), "", unit); /* fits: unit < 300 */
	fprintf(stderr, TOOL_NAME ": to install: add --write (or save this as "
		"%s), then: systemctl daemon-reload && systemctl restart %s\n",
		shell_word(file, fword, sizeof(fword)),
		shell_word(unit, word, sizeof(word)));
	return TOOL_OK;
}
