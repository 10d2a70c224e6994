/*
 * The numashim command: shared declarations of its subcommands.
 *
 *   numashim.c  main, help, version, `help env`
 *   opts.c      the policy options of run/dropin (generated from
 *               policy_options[]), their validation, the library path
 *   run.c       `run` and `dropin`
 *   stat.c      `stat`: choosing segments, the table, --watch
 *   gc.c        `stat --gc`: removing stale segments
 *   export.c    `stat --json` and `stat --prometheus`
 *   doctor.c    `doctor`: the host's and processes' NUMA health
 *
 * Errors for people: one line on stderr, "numashim: what: why".
 */
#ifndef NUMASHIM_TOOL_H
#define NUMASHIM_TOOL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stats/reader.h"

#define TOOL_NAME "numashim"

/* Exit statuses: 0 fine, 1 something failed, 2 bad usage. */
enum { TOOL_OK = 0, TOOL_FAIL = 1, TOOL_USAGE = 2 };

void tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same line on f (stat --watch puts a refresh's errors in its frame). */
void tool_ferr(FILE *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int cmd_run(int argc, char **argv);
int cmd_dropin(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_help_env(int argc, char **argv);

/* Remove the stale segments in dir (STATS_DIR when NULL); TOOL_FAIL when
 * one that is not a segment, or that could not be removed, was kept. */
int tool_gc(const char *dir);

/* What `stat --gc` does with one entry of the stats directory (gc.c). */
enum tool_verdict {
	TOOL_V_LIVE,       /* its process runs (or could not be judged) */
	TOOL_V_STALE,      /* removed: its process is gone (snap->state) */
	TOOL_V_OTHERS,     /* another user's, we are not root: left alone */
	TOOL_V_OTHER_NS,   /* written in another pid namespace: kept */
	TOOL_V_INVALID,    /* not a valid segment: kept, err says why */
	TOOL_V_VANISHED,   /* removed meanwhile by someone else */
};

/* The verdict on entry e of a listing, at `path`, for a tool in pid
 * namespace pid_ns (stats_pid_ns); snap and err are scratch (snap holds
 * the segment for TOOL_V_STALE, err the line for TOOL_V_INVALID). */
enum tool_verdict tool_gc_verdict(const char *path, const struct stats_entry *e,
				  uint64_t pid_ns, struct stats_snapshot *snap,
				  char *err, size_t errlen);

/* ------------------------------------------------------------ opts.c */

/* The policy options given on the command line, as NUMASHIM_* settings. */
#define TOOL_MAX_SETTINGS 64
struct tool_settings {
	size_t n;
	const char *name[TOOL_MAX_SETTINGS];   /* NUMASHIM_... (table's) */
	const char *value[TOOL_MAX_SETTINGS];
	const char *lib;                       /* --lib, or NULL */
};

/* First option id for the generated policy options (getopt val). */
#define TOOL_OPT_POLICY_BASE 1000
#define TOOL_OPT_LIB 999

/*
 * Append one long option per policy option (NUMASHIM_INTERLEAVE_MIN ->
 * --interleave-min) and --lib to `opts` (which has room for `room`
 * entries, including the terminating zero entry). Returns the count added.
 */
size_t tool_policy_longopts(struct option *opts, size_t room);

/* Handle getopt's `c` if it is a policy option; true when it was one. */
bool tool_policy_opt(int c, const char *arg, struct tool_settings *s);

/* Validate the settings with the shim's own parser; on the first problem
 * print one line and return -EINVAL. */
int tool_validate(const struct tool_settings *s);

/* The option's long name for a variable (NUMASHIM_NODES -> nodes). */
const char *tool_optname(const char *var, char *buf, size_t len);

/*
 * The shim library: --lib, NUMASHIM_LIB, the build tree next to this
 * program, the installed copy; made absolute. 0, or -ENOENT after one line.
 * `for_service` (dropin): no build tree, paths that do not exist here are
 * accepted (the drop-in may be meant for another machine), and the path
 * must be valid UTF-8 (systemd ignores an Environment= line that is not).
 */
int tool_find_lib(const char *given, bool for_service, char *out, size_t len);

/* Report a getopt_long failure (opterr = 0, optstring starting with ':'
 * or "+:"; `opts` the long options it was given): one line naming the
 * command and the option as written. Returns TOOL_USAGE. */
int tool_badopt(const char *cmd, int c, char **argv,
		const struct option *opts);

/* Print the policy options for a usage text (for_service: dropin's). */
void tool_print_policy_usage(FILE *f, bool for_service);

/* ------------------------------------------------------------ export.c */

/* Strings from a segment made printable UTF-8: control bytes and invalid
 * UTF-8 become '?'. */
void tool_clean(const char *in, char *out, size_t len);

/* Whether s is valid UTF-8 throughout (systemd ignores a line that is
 * not). */
bool tool_utf8_ok(const char *s);

/* A JSON string: `raw` cleaned as above, \ and " escaped, quoted; of any
 * length. */
void tool_json_str(FILE *f, const char *raw);

void tool_print_json(FILE *f, const struct stats_snapshot *v, size_t n);
/* One process's segment as stat's table (stat_table.c). */
void tool_print_table(FILE *f, const struct stats_snapshot *snap);
void tool_print_prometheus(FILE *f, const struct stats_snapshot *v, size_t n);

/*
 * *acc += v, saturating at UINT64_MAX; true when the sum did not fit. Only
 * a damaged or hostile segment gets there (2^64 bytes or events), where a
 * wrapped sum would pass for a small, believable number: the outputs show
 * UINT64_MAX and say which sums saturated (the table in a line below it,
 * the JSON in total's "saturated").
 */
static inline bool tool_add_sat(uint64_t *acc, uint64_t v)
{
	if (__builtin_add_overflow(*acc, v, acc)) {
		*acc = UINT64_MAX;
		return true;
	}
	return false;
}

/* How every output prints a rated percentage, and how it is rated. */
#define TOOL_PCT "%.2f"

/* Remote-access level of the seeds for a percentage, as printed with
 * TOOL_PCT (<5 normal, 5-10 monitor, 10-20 investigate, >20 critical). */
const char *tool_level(double pct);

#endif
