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

int cmd_run(int argc, char **argv);
int cmd_dropin(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_help_env(int argc, char **argv);

/* Remove the stale segments in dir (STATS_DIR when NULL); TOOL_FAIL when
 * one was kept. */
int tool_gc(const char *dir);

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
 * `for_service` (dropin): no build tree, and paths that do not exist here
 * are accepted (the drop-in may be meant for another machine).
 */
int tool_find_lib(const char *given, bool for_service, char *out, size_t len);

/* Report a getopt_long failure (opterr = 0, optstring starting with ':'
 * or "+:"; `opts` the long options it was given): one line naming the
 * command and the option as written. Returns TOOL_USAGE. */
int tool_badopt(const char *cmd, int c, char **argv,
		const struct option *opts);

/* Print the policy options for a usage text. */
void tool_print_policy_usage(FILE *f);

/* ------------------------------------------------------------ export.c */

/* Strings from a segment made printable UTF-8: control bytes and invalid
 * UTF-8 become '?'. */
void tool_clean(const char *in, char *out, size_t len);

/* A JSON string: `raw` cleaned as above, \ and " escaped, quoted. */
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

/* Remote-access level of the seeds for a percentage. */
const char *tool_level(double pct);

#endif
