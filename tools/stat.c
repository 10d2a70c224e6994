/*
 * `numashim stat`: choose the segments (PIDs, paths, or every live one),
 * read them through stats/reader, and show them: a numastat-style table
 * with the nodes as columns, JSON, or Prometheus text (export.c); refresh
 * with --watch. (--gc is in gc.c.)
 */
#include "tools/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum format { FMT_TABLE, FMT_JSON, FMT_PROM };

struct stat_opts {
	const char *dir;
	const char *output;
	bool all, gc;
	enum format fmt;
	double watch;       /* seconds; 0 = once */
	char **args;        /* PIDs and paths */
	int nargs;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void stat_usage(FILE *f)
{
	fprintf(f, "usage: numashim stat [PID|PATH...] [OPTIONS]\n"
		"Per-node stats of processes running under numashim, read from "
		"their\nsegments in " STATS_DIR " (default: every live one).\n\n"
		"  -a, --all             also stale segments (process gone)\n"
		"  -w, --watch SECS      refresh every SECS seconds until "
		"interrupted\n"
		"  -j, --json            JSON: an array, one object per process\n"
		"  -p, --prometheus      node_exporter textfile-collector format\n"
		"  -o, --output FILE     write to FILE (atomically: a temporary "
		"file renamed)\n"
		"      --gc              remove stale segments of processes that "
		"are gone\n"
		"      --dir DIR         segments in DIR instead of " STATS_DIR "\n"
		"  -h, --help            this text\n\n"
		"Remote pages %% (sampled pages found on another node) is rated "
		"as in the\nusual NUMA guides: <5 normal, 5-10 monitor, 10-20 "
		"investigate, >20 critical.\n");
}

const char *tool_level(double pct)
{
	if (pct < 5.0)
		return "normal";
	if (pct < 10.0)
		return "monitor";
	if (pct <= 20.0)
		return "investigate";
	return "critical";
}

/* ------------------------------------------------------------ collect */

struct result {
	struct stats_snapshot *v;
	size_t n, cap;
	int failed;         /* lines of error printed */
	int others;         /* other users' segments skipped */
};

static struct stats_snapshot *slot(struct result *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct stats_snapshot *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		r->v = v;
		r->cap = cap;
	}
	return &r->v[r->n];
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* `listed`: arg came from listing the directory, where a segment that
 * vanished (its process exited) or is still being created is skipped. */
static void one(struct result *r, const struct stat_opts *o, const char *arg,
		bool listed)
{
	char err[STATS_ERR_LEN];
	struct stats_snapshot *s = slot(r);
	int rc;

	if (s == NULL) {
		tool_err("out of memory");
		r->failed++;
		return;
	}
	if (all_digits(arg)) {
		long pid = strtol(arg, NULL, 10);

		if (pid <= 0 || pid > INT_MAX) {
			tool_err("stat: %s: not a process id", arg);
			r->failed++;
			return;
		}
		rc = stats_read_pid(o->dir, (int)pid, s, err, sizeof(err));
	} else {
		rc = stats_read_path(arg, false, s, err, sizeof(err));
	}
	if (rc && listed && (rc == -ENOENT || rc == -EAGAIN))
		return;
	if (rc) {
		tool_err("%s", err);
		r->failed++;
		return;
	}
	if (listed && !o->all && s->state != STATS_LIVE)
		return; /* its process exited while we read */
	s->resident_ok = s->state == STATS_LIVE && s->seg.h.active &&
			 stats_resident(s->seg.h.pid, s->resident) == 0;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].path, s->path) == 0)
			return; /* named twice */
	r->n++;
}

static void collect(struct result *r, const struct stat_opts *o)
{
	struct stats_entry *e;
	char err[STATS_ERR_LEN], path[PATH_MAX];
	const char *dir = o->dir ? o->dir : STATS_DIR;
	uid_t me = geteuid();
	size_t n;

	r->n = 0;
	r->failed = r->others = 0;
	if (o->nargs) {
		for (int i = 0; i < o->nargs; i++)
			one(r, o, o->args[i], false);
		return;
	}
	if (stats_list(dir, &e, &n, err, sizeof(err))) {
		tool_err("%s", err);
		r->failed++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (!o->all && (!e[i].name_ok || e[i].state != STATS_LIVE))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e[i].name);
		/* Another user's segments are theirs to read (and mode 0600
		 * keeps them from us anyway): skipped, not errors. */
		if (me != 0 && lstat(path, &st) == 0 && st.st_uid != me) {
			r->others++;
			continue;
		}
		if (!e[i].name_ok) {
			tool_err("%s: not a segment name (%s<pid>.<start>)", path,
				 NS_STATS_PREFIX);
			r->failed++;
			continue;
		}
		one(r, o, path, true);
	}
	free(e);
}

/* ------------------------------------------------------------ table */

#define COLW 16

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void row_u(FILE *f, const char *label, const struct ns_stats_segment *s,
		  uint64_t shown, size_t off, size_t band, bool in_mib)
{
	uint64_t total = 0;

	fprintf(f, "%-18s", label);
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		const struct ns_stats_node *nd = &s->node[k];
		uint64_t v;

		if (!(shown >> k & 1))
			continue;
		if (band == NS_BANDS) { /* all bands */
			const uint64_t *a = (const uint64_t *)((const char *)nd + off);

			v = a[0] + a[1] + a[2];
		} else {
			v = ((const uint64_t *)((const char *)nd + off))[band];
		}
		total += v;
		if (in_mib)
			fprintf(f, "%*.2f", COLW, mib(v));
		else
			fprintf(f, "%*llu", COLW, (unsigned long long)v);
	}
	if (in_mib)
		fprintf(f, "%*.2f\n", COLW, mib(total));
	else
		fprintf(f, "%*llu\n", COLW, (unsigned long long)total);
}

#define ROW(f, label, s, shown, field, in_mib) \
	row_u(f, label, s, shown, offsetof(struct ns_stats_node, field), 0, in_mib)

/* Local %, remote % or the level: one row over the nodes and the total. */
static void row_pct(FILE *f, const char *label, const struct ns_stats_segment *s,
		    uint64_t shown, int what)
{
	uint64_t ts = 0, tf = 0, tb = 0;

	fprintf(f, "%-18s", label);
	for (int k = 0; k <= NS_STATS_MAX_NODES; k++) {
		uint64_t sp, fp, fb;

		if (k < NS_STATS_MAX_NODES) {
			if (!(shown >> k & 1))
				continue;
			sp = s->node[k].sampled_pages;
			fp = s->node[k].found_pages;
			fb = s->node[k].fallbacks;
			ts += sp, tf += fp, tb += fb;
		} else {
			sp = ts, fp = tf, fb = tb;
		}
		if (sp == 0)
			fprintf(f, "%*s", COLW, "-");
		else if (what == 0)
			fprintf(f, "%*.2f", COLW, 100.0 * (double)fp / (double)sp);
		else if (what == 1)
			fprintf(f, "%*.2f", COLW, 100.0 * (double)fb / (double)sp);
		else
			fprintf(f, "%*s", COLW,
				tool_level(100.0 * (double)fb / (double)sp));
	}
	fputc('\n', f);
}

/* Resident memory numashim placed, per node (numa_maps; see the reader). */
static void row_resident(FILE *f, const struct stats_snapshot *snap,
			 uint64_t shown)
{
	uint64_t total = 0;

	fprintf(f, "%-18s", "Resident (MiB)");
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		if (!(shown >> k & 1))
			continue;
		total += snap->resident[k];
		if (snap->resident_ok)
			fprintf(f, "%*.2f", COLW, mib(snap->resident[k]));
		else
			fprintf(f, "%*s", COLW, "-");
	}
	if (snap->resident_ok)
		fprintf(f, "%*.2f\n", COLW, mib(total));
	else
		fprintf(f, "%*s\n", COLW, "-");
}

static void rule(FILE *f, int cols)
{
	fprintf(f, "%-18s", "");
	for (int i = 0; i < cols; i++)
		fprintf(f, " %.*s", COLW - 1, "---------------");
	fputc('\n', f);
}

static void print_table(FILE *f, const struct stats_snapshot *snap)
{
	static const char *const left[NS_STATS_LEFT_REASONS] = {
		"file", "fixed", "hugetlb", "stack", "small", "program policy",
		"jvm numa", "off"
	};
	const struct ns_stats_segment *s = &snap->seg;
	const struct ns_stats_header *h = &s->h;
	uint64_t shown = stats_nodes_shown(s), ts = 0, tb = 0;
	char comm[64], exe[512], policy[256], col[32];
	struct timespec now;
	int cols = 1;

	tool_clean(h->comm, comm, sizeof(comm));
	tool_clean(h->exe, exe, sizeof(exe));
	tool_clean(h->policy, policy, sizeof(policy));
	clock_gettime(CLOCK_REALTIME, &now);
	fprintf(f, "Per-node numashim stats for PID %d (%s)%s%s%s\n", h->pid, comm,
		snap->state == STATS_LIVE ? "" : " [",
		snap->state == STATS_LIVE ? "" : stats_state_name(snap->state),
		snap->state == STATS_LIVE ? "" : "]");
	fprintf(f, "exe %s\npolicy: %s (%s%s)\n", exe, policy[0] ? policy : "-",
		h->active ? "per-node arenas" : "passing through to jemalloc",
		h->fake_nodes ? ", emulated nodes" : "");
	if (h->updated_ns) {
		double age = (double)now.tv_sec + now.tv_nsec / 1e9 -
			     (double)h->updated_ns / 1e9;

		fprintf(f, "updated %.1f s ago (%llu updates); %s\n",
			age < 0 ? 0.0 : age, (unsigned long long)h->updates,
			snap->path);
	} else {
		fprintf(f, "not updated yet; %s\n", snap->path);
	}
	fprintf(f, "%-18s", "");
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		if (!(shown >> k & 1))
			continue;
		snprintf(col, sizeof(col), "Node %d", k);
		fprintf(f, "%*s", COLW, col);
		cols++;
	}
	fprintf(f, "%*s\n", COLW, "Total");
	rule(f, cols);
	row_u(f, "Live small (MiB)", s, shown, offsetof(struct ns_stats_node,
	      live_bytes), NS_BAND_SMALL, true);
	row_u(f, "Live large (MiB)", s, shown, offsetof(struct ns_stats_node,
	      live_bytes), NS_BAND_LARGE, true);
	row_u(f, "Live mmap (MiB)", s, shown, offsetof(struct ns_stats_node,
	      live_bytes), NS_BAND_MMAP, true);
	row_resident(f, snap, shown);
	row_u(f, "Live blocks", s, shown, offsetof(struct ns_stats_node,
	      live_count), NS_BANDS, false);
	ROW(f, "Allocs", s, shown, allocs, false);
	ROW(f, "Frees", s, shown, frees, false);
	ROW(f, "Remote frees", s, shown, remote_frees, false);
	ROW(f, "Interleaved (MiB)", s, shown, interleaved_bytes, true);
	ROW(f, "Pages sampled", s, shown, sampled_pages, false);
	ROW(f, "Pages found", s, shown, found_pages, false);
	ROW(f, "Pages fallback", s, shown, fallbacks, false);
	ROW(f, "Pages migrated", s, shown, migrated_pages, false);
	ROW(f, "Threads", s, shown, threads, false);
	rule(f, cols);
	row_pct(f, "Local pages %", s, shown, 0);
	row_pct(f, "Remote pages %", s, shown, 1);
	row_pct(f, "Remote level", s, shown, 2);
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		if (shown >> k & 1) {
			ts += s->node[k].sampled_pages;
			tb += s->node[k].fallbacks;
		}
	}
	if (ts)
		fprintf(f, "Remote pages: %.2f %% of %llu sampled: %s (<5 normal, "
			"5-10 monitor, 10-20 investigate, >20 critical)\n",
			100.0 * (double)tb / (double)ts, (unsigned long long)ts,
			tool_level(100.0 * (double)tb / (double)ts));
	else
		fprintf(f, "Remote pages: no pages sampled yet\n");
	fprintf(f, "mmap: %llu placed (%.2f MiB); left to the kernel:",
		(unsigned long long)h->mmap_placed, mib(h->mmap_placed_bytes));
	for (int i = 0; i < NS_STATS_LEFT_REASONS; i++)
		fprintf(f, "%s %s %llu", i ? "," : "", left[i],
			(unsigned long long)h->mmap_left[i]);
	fprintf(f, "\nshm: %llu placed (%.2f MiB), %llu attached elsewhere "
		"already (left as they are); program's own calls: mbind %llu, "
		"set_mempolicy %llu\n",
		(unsigned long long)h->shm_placed, mib(h->shm_placed_bytes),
		(unsigned long long)h->shm_attached,
		(unsigned long long)h->program_mbind,
		(unsigned long long)h->program_set_mempolicy);
}

/* ------------------------------------------------------------ output */

static void render(FILE *f, const struct result *r, const struct stat_opts *o)
{
	if (o->fmt == FMT_JSON) {
		tool_print_json(f, r->v, r->n);
	} else if (o->fmt == FMT_PROM) {
		tool_print_prometheus(f, r->v, r->n);
	} else {
		for (size_t i = 0; i < r->n; i++) {
			if (i)
				fputc('\n', f);
			print_table(f, &r->v[i]);
		}
		if (r->n == 0 && o->nargs == 0)
			fprintf(f, "No %ssegments of processes under numashim in "
				"%s.\n", o->all ? "" : "live ", o->dir ? o->dir :
				STATS_DIR);
		if (r->others)
			fprintf(f, "(%d segment%s of other users not shown: run as "
				"root to see them)\n", r->others,
				r->others == 1 ? "" : "s");
	}
}

/* Write through a temporary file in the same directory, then rename: a
 * collector never reads half a file. */
static int write_file(const char *path, const struct result *r,
		      const struct stat_opts *o)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
		tool_err("stat: --output %s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);
	if (fd < 0 || fchmod(fd, 0644) || (f = fdopen(fd, "w")) == NULL) {
		tool_err("stat: --output %s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return -EIO;
	}
	render(f, r, o);
	if (fflush(f) || ferror(f) || fclose(f) || rename(tmp, path)) {
		tool_err("stat: --output %s: %s", path, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

static int once(struct result *r, const struct stat_opts *o, bool clear)
{
	collect(r, o);
	if (o->output)
		return write_file(o->output, r, o) ? TOOL_FAIL :
		       r->failed ? TOOL_FAIL : TOOL_OK;
	if (clear) {
		/* One write per screen: no flicker. */
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);

		if (m) {
			render(m, r, o);
			fclose(m);
			printf("\033[H\033[2J%s", buf);
			free(buf);
		}
		fflush(stdout);
	} else {
		render(stdout, r, o);
	}
	return r->failed ? TOOL_FAIL : TOOL_OK;
}

/* ------------------------------------------------------------ command */

static int parse_opts(int argc, char **argv, struct stat_opts *o)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "watch", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "gc", no_argument, NULL, 'g' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 }
	};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":aw:jpo:h", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'a': o->all = true; break;
		case 'j': o->fmt = FMT_JSON; break;
		case 'p': o->fmt = FMT_PROM; break;
		case 'o': o->output = optarg; break;
		case 'g': o->gc = true; break;
		case 'd': o->dir = optarg; break;
		case 'h': stat_usage(stdout); return -1;
		case 'w':
			errno = 0;
			o->watch = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->watch >= 0.1) ||
			    o->watch > 86400) {
				tool_err("stat: --watch \"%s\": not a number of "
					 "seconds from 0.1 to 86400", optarg);
				return TOOL_USAGE;
			}
			break;
		default:
			return tool_badopt("stat", c, argv);
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->all && o->nargs) {
		tool_err("stat: --all or PIDs, not both");
		return TOOL_USAGE;
	}
	if (o->gc && (o->nargs || o->fmt != FMT_TABLE || o->watch || o->output)) {
		tool_err("stat: --gc takes no PIDs and no other output option");
		return TOOL_USAGE;
	}
	return 0;
}

int cmd_stat(int argc, char **argv)
{
	struct stat_opts o = { 0 };
	struct result r = { 0 };
	int rc = parse_opts(argc, argv, &o);

	if (rc)
		return rc < 0 ? TOOL_OK : rc;
	if (o.gc)
		return tool_gc(o.dir);
	if (o.watch == 0) {
		rc = once(&r, &o, false);
	} else {
		struct sigaction sa = { .sa_handler = on_signal };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		while (!stop) {
			struct timespec ts;

			once(&r, &o, o.output == NULL && o.fmt == FMT_TABLE &&
			     isatty(STDOUT_FILENO));
			ts.tv_sec = (time_t)o.watch;
			ts.tv_nsec = (long)((o.watch - (double)ts.tv_sec) * 1e9);
			while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
		rc = TOOL_OK; /* interrupted: the normal end of --watch */
	}
	free(r.v);
	return rc;
}
