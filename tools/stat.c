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
		"interrupted, or\n                        until every PID "
		"named is gone\n"
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

/* ------------------------------------------------------------ collect */

struct result {
	struct stats_snapshot *v;
	size_t n, cap;
	int failed;         /* lines of error printed */
	int others;         /* other users' segments skipped */
	int alive;          /* PIDs and paths named whose process still runs */
	int *quiet;         /* processes under numashim with no segment yet */
	size_t nquiet;
	FILE *err;          /* where the errors go: stderr, or a watch's frame */
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

/*
 * Whether a and b are one process's segment: by the identity the validated
 * header holds (pid, start time, pid namespace; the reader refuses a file
 * whose name says another pid or start), not by the path, which names it
 * in many ways (a pid, "./numashim.PID.START", a symbolic link to the
 * directory). A copy elsewhere is the same process too: shown once, as the
 * Prometheus text must (node_exporter refuses a series given twice).
 */
static bool same_segment(const struct stats_snapshot *a,
			 const struct stats_snapshot *b)
{
	return a->seg.h.pid == b->seg.h.pid &&
	       a->seg.h.start_time == b->seg.h.start_time &&
	       a->seg.h.pid_ns == b->seg.h.pid_ns &&
	       a->seg.h.image == b->seg.h.image;
}

/*
 * Whether what `arg` names may still show live figures (stat --watch ends
 * when none does): its segment is a live process's, or it could not be
 * read while its process runs (no segment yet, busy). A segment whose
 * process is gone, a missing file, a pid no process has: not. A path that
 * could not be read speaks for the process its name names: a segment left
 * busy (seq odd) or damaged by a process killed mid-update kept a watch
 * of its path going for ever.
 */
static bool still_alive(long pid, const char *arg, int rc,
			const struct stats_snapshot *s)
{
	uint64_t start;

	if (rc == 0)
		return s->state == STATS_LIVE;
	if (pid > 0)
		return stats_proc_start((int)pid, &start) == 0;
	return rc != -ENOENT && stats_names_live(arg);
}

/* `listed`: arg came from listing the directory, where a segment that
 * vanished (its process exited) or is still being created is skipped. */
static void one(struct result *r, const struct stat_opts *o, const char *arg,
		bool listed)
{
	char err[STATS_ERR_LEN];
	struct stats_snapshot *s = slot(r);
	long pid = 0;
	int rc;

	if (s == NULL) {
		tool_ferr(r->err, "out of memory");
		r->failed++;
		return;
	}
	if (all_digits(arg)) {
		pid = strtol(arg, NULL, 10);
		if (pid <= 0 || pid > INT_MAX) {
			tool_ferr(r->err, "stat: %s: not a process id", arg);
			r->failed++;
			return;
		}
		rc = stats_read_pid(o->dir, (int)pid, s, err, sizeof(err));
	} else {
		rc = stats_read_path(arg, false, s, err, sizeof(err));
	}
	if (!listed)
		r->alive += still_alive(pid, arg, rc, s);
	if (rc && listed && (rc == -ENOENT || rc == -EAGAIN))
		return;
	if (rc) {
		tool_ferr(r->err, "%s", err);
		r->failed++;
		return;
	}
	if (listed && !o->all && s->state != STATS_LIVE)
		return; /* its process exited while we read */
	s->resident_ok = s->state == STATS_LIVE && s->seg.h.active &&
			 stats_resident(s->seg.h.pid, s->resident) == 0;
	for (size_t i = 0; i < r->n; i++)
		if (same_segment(&r->v[i], s))
			return; /* named twice */
	r->n++;
}

/*
 * The listing of every live segment misses the processes under numashim
 * that have none yet: a process makes it at its first refresh, once it
 * allocates a second or more after its start, so an idle single-threaded
 * process, or an idle one numashim passes through, has none. The table
 * names them, from their maps (stats_shim_pids), for the real /proc and
 * /dev/shm only, never the tool itself. The scan comes before the
 * segments are listed: a process that makes its segment in between is
 * then in both, and dropped here.
 */
static void quiet_scan(struct result *r)
{
	free(r->quiet);
	r->quiet = NULL;
	r->nquiet = 0;
	if (stats_shim_pids("", &r->quiet, &r->nquiet))
		r->nquiet = 0;
}

static void quiet_drop_listed(struct result *r)
{
	size_t k = 0;

	for (size_t i = 0; i < r->nquiet; i++) {
		bool listed = false;

		for (size_t j = 0; j < r->n && !listed; j++)
			listed = r->v[j].state == STATS_LIVE &&
				 r->v[j].seg.h.pid == r->quiet[i];
		if (!listed)
			r->quiet[k++] = r->quiet[i];
	}
	r->nquiet = k;
}

static void collect(struct result *r, const struct stat_opts *o)
{
	struct stats_entry *e;
	char err[STATS_ERR_LEN], path[PATH_MAX], clean[PATH_MAX];
	const char *dir = o->dir ? o->dir : STATS_DIR;
	uid_t me = geteuid();
	size_t n;

	r->n = 0;
	r->failed = r->others = r->alive = 0;
	if (o->nargs) {
		for (int i = 0; i < o->nargs; i++)
			one(r, o, o->args[i], false);
		return;
	}
	if (o->dir == NULL && o->fmt == FMT_TABLE)
		quiet_scan(r);
	if (stats_list(dir, &e, &n, err, sizeof(err))) {
		tool_ferr(r->err, "%s", err);
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
			/* Anyone may name a file so, and root lists them
			 * all: no escape sequence of its reaches the
			 * terminal. */
			tool_clean(path, clean, sizeof(clean));
			tool_ferr(r->err, "%s: not a segment name (%s<pid>.<start>)",
				  clean, NS_STATS_PREFIX);
			r->failed++;
			continue;
		}
		one(r, o, path, true);
	}
	free(e);
	quiet_drop_listed(r);
}

/* ------------------------------------------------------------ output */

#define QUIET_SHOWN 20

static void print_quiet(FILE *f, const struct result *r)
{
	size_t shown = r->nquiet < QUIET_SHOWN ? r->nquiet : QUIET_SHOWN;

	if (r->nquiet == 0)
		return;
	fprintf(f, "%sUnder numashim, no statistics yet:", r->n ? "\n" : "");
	for (size_t i = 0; i < shown; i++) {
		char path[64], comm[32] = "", clean[64];
		FILE *c;

		snprintf(path, sizeof(path), "/proc/%d/comm", r->quiet[i]);
		if ((c = fopen(path, "re")) != NULL) {
			if (fgets(comm, sizeof(comm), c))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(c);
		}
		/* The program names itself: no escape or tab of its reaches
		 * the terminal. */
		tool_clean(comm, clean, sizeof(clean));
		fprintf(f, "%s %d", i ? "," : "", r->quiet[i]);
		if (clean[0])
			fprintf(f, " (%s)", clean);
	}
	if (r->nquiet > shown)
		fprintf(f, " and %zu more", r->nquiet - shown);
	fputs("\n(a process makes its segment at its first refresh, once it "
	      "allocates a second or more after its start)\n", f);
}

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
			tool_print_table(f, &r->v[i]);
		}
		if (r->n == 0 && o->nargs == 0)
			fprintf(f, "No %ssegments of processes under numashim in "
				"%s.\n", o->all ? "" : "live ", o->dir ? o->dir :
				STATS_DIR);
		if (r->others)
			fprintf(f, "(%d segment%s of other users not shown: run as "
				"root to see them)\n", r->others,
				r->others == 1 ? "" : "s");
		print_quiet(f, r);
	}
}

/* Write through a temporary file in the same directory, then rename: a
 * collector never reads half a file. */
static int write_file(const char *path, const struct result *r,
		      const struct stat_opts *o)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd, e;

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
	/* Closed whatever happened: a --watch on a full disk otherwise kept
	 * one deleted temporary file open per refresh, its blocks with it,
	 * until mkstemp failed with EMFILE for good. */
	e = fflush(f) || ferror(f) ? (errno ? errno : EIO) : 0;
	if (fclose(f) && e == 0)
		e = errno;
	if (e == 0 && rename(tmp, path))
		e = errno;
	if (e) {
		tool_err("stat: --output %s: %s", path, strerror(e));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/*
 * One refresh. `clear` (a table on a terminal): one write per screen, no
 * flicker, and the refresh's errors are in it, above the table: on stderr
 * the clear would wipe them at once, and a process that has exited would
 * leave a blank screen.
 */
static int once(struct result *r, const struct stat_opts *o, bool clear)
{
	char *errs = NULL, *buf = NULL;
	size_t elen = 0, len = 0;
	FILE *em = clear ? open_memstream(&errs, &elen) : NULL, *m;

	r->err = em ? em : stderr;
	collect(r, o);
	r->err = stderr;
	if (em)
		fclose(em);
	if (o->output) {
		free(errs);
		return write_file(o->output, r, o) ? TOOL_FAIL :
		       r->failed ? TOOL_FAIL : TOOL_OK;
	}
	if (clear) {
		m = open_memstream(&buf, &len);
		if (m) {
			render(m, r, o);
			fclose(m);
		}
		printf("\033[H\033[2J%s", errs ? errs : "");
		if (m)
			fputs(buf, stdout);
		else
			render(stdout, r, o);
		free(buf);
		free(errs);
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
		case 'j':
		case 'p':
			/* One format: the last one silently winning would hand
			 * a JSON reader Prometheus text. */
			if (o->fmt != FMT_TABLE &&
			    o->fmt != (c == 'j' ? FMT_JSON : FMT_PROM)) {
				tool_err("stat: --json or --prometheus, not both");
				return TOOL_USAGE;
			}
			o->fmt = c == 'j' ? FMT_JSON : FMT_PROM;
			break;
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
			return tool_badopt("stat", c, argv, opts);
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

/* The line that ends a watch whose processes are all gone. */
static void watch_ended(const struct stat_opts *o)
{
	char first[64];

	tool_clean(o->args[0], first, sizeof(first));
	if (o->nargs == 1)
		tool_err("stat --watch: %s: its process is gone; stopped", first);
	else
		tool_err("stat --watch: %s and the %d others named: their "
			 "processes are gone; stopped", first, o->nargs - 1);
}

int cmd_stat(int argc, char **argv)
{
	struct stat_opts o = { 0 };
	struct result r = { .err = stderr };
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
		/* Until interrupted, or until every process named is gone;
		 * the status is the last refresh's. */
		while (!stop) {
			struct timespec ts;

			rc = once(&r, &o, o.output == NULL && o.fmt == FMT_TABLE &&
				  isatty(STDOUT_FILENO));
			if (o.nargs && r.alive == 0) {
				watch_ended(&o);
				break;
			}
			ts.tv_sec = (time_t)o.watch;
			ts.tv_nsec = (long)((o.watch - (double)ts.tv_sec) * 1e9);
			while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
	}
	free(r.v);
	free(r.quiet);
	return rc;
}
