/*
 * stats reader: see reader.h. Every check names the file and what is wrong;
 * nothing here trusts a byte of the segment before it has been validated.
 */
#include "stats/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(char *err, size_t len, int rc, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t len, int rc, const char *path,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || len == 0)
		return rc;
	n = snprintf(err, len, "%s: ", path);
	if (n < 0 || (size_t)n >= len)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(err + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

const char *stats_state_name(enum stats_state s)
{
	switch (s) {
	case STATS_LIVE: return "live";
	case STATS_DEAD: return "stale: process gone";
	case STATS_REUSED: return "stale: pid reused by another process";
	case STATS_EXECED: return "stale: its process has exec'd another program";
	}
	return "?";
}

/* Does uid appear among the real/effective/saved/fs uids of pid?
 * 1 yes, 0 no, -1 cannot tell (process gone). */
static int proc_has_uid(int pid, uid_t uid, long *proc_uid)
{
	char path[64], buf[4096], *p;
	long u[4];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (stats_read_small(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "\nUid:");
	if (p == NULL || sscanf(p + 5, "%ld %ld %ld %ld", &u[0], &u[1], &u[2],
				&u[3]) != 4)
		return -1;
	*proc_uid = u[1];
	for (int i = 0; i < 4; i++)
		if (u[i] == (long)uid)
			return 1;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct stats_entry *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return strcmp(x->name, y->name);
}

int stats_list(const char *dir, struct stats_entry **out, size_t *n,
	       char *err, size_t errlen)
{
	struct stats_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if (dir == NULL)
		dir = STATS_DIR;
	*out = NULL;
	*n = 0;
	d = opendir(dir);
	if (d == NULL)
		return fail(err, errlen, -errno, dir, "cannot list: %s",
			    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct stats_entry *e;

		if (strncmp(de->d_name, NS_STATS_PREFIX,
			    strlen(NS_STATS_PREFIX)) != 0)
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct stats_entry *nv = realloc(v, ncap * sizeof(*v));

			if (nv == NULL) {
				free(v);
				closedir(d);
				return fail(err, errlen, -ENOMEM, dir,
					    "out of memory listing segments");
			}
			v = nv;
			cap = ncap;
		}
		e = &v[cnt++];
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", de->d_name);
		e->name_ok = stats_parse_name(de->d_name, &e->pid, &e->start) == 0;
		e->state = e->name_ok ? stats_state_of(e->pid, e->start) : STATS_DEAD;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_entry);
	*out = v;
	*n = cnt;
	return 0;
}

uint64_t stats_nodes_shown(const struct ns_stats_segment *s)
{
	uint32_t n = s->h.node_count;
	uint64_t in_use = n >= 64 ? ~0ULL : ((1ULL << n) - 1);

	return s->h.node_mask ? (s->h.node_mask & in_use) : in_use;
}

static int check_string(const char *path, const char *field, const char *s,
			size_t len, char *err, size_t errlen)
{
	if (memchr(s, '\0', len) == NULL)
		return fail(err, errlen, -EINVAL, path,
			    "%s is not NUL-terminated within its %zu bytes "
			    "(corrupt segment)", field, len);
	return 0;
}

/* The fields a writer sets once and never changes: magic, version, sizes. */
static int check_identity(const char *path, const struct ns_stats_header *h,
			  char *err, size_t errlen)
{
	if (h->magic != NS_STATS_MAGIC)
		return fail(err, errlen, -EINVAL, path, "wrong magic 0x%016llx, "
			    "expected 0x%016llx (not a numashim stats segment)",
			    (unsigned long long)h->magic,
			    (unsigned long long)NS_STATS_MAGIC);
	if (h->version != NS_STATS_VERSION)
		return fail(err, errlen, -EPROTO, path, "layout version %u, this "
			    "numashim reads version %u (tool and library differ)",
			    h->version, NS_STATS_VERSION);
	if (h->header_size != sizeof(struct ns_stats_header))
		return fail(err, errlen, -EINVAL, path, "header_size %u, expected "
			    "%zu for version %u (corrupt segment)", h->header_size,
			    sizeof(struct ns_stats_header), NS_STATS_VERSION);
	if (h->size != sizeof(struct ns_stats_segment))
		return fail(err, errlen, -EINVAL, path, "size field %llu, expected "
			    "%zu (corrupt segment)", (unsigned long long)h->size,
			    sizeof(struct ns_stats_segment));
	return 0;
}

static int validate(const char *path, const struct ns_stats_segment *s,
		    char *err, size_t errlen)
{
	const struct ns_stats_header *h = &s->h;
	int rc = check_identity(path, h, err, errlen);

	if (rc)
		return rc;
	if (h->pid <= 0)
		return fail(err, errlen, -EINVAL, path, "pid %d is not a process id "
			    "(corrupt segment)", h->pid);
	if (h->node_count > NS_STATS_MAX_NODES)
		return fail(err, errlen, -EINVAL, path, "node_count %u exceeds %d "
			    "(corrupt segment)", h->node_count, NS_STATS_MAX_NODES);
	if (h->node_count < NS_STATS_MAX_NODES &&
	    (h->node_mask >> h->node_count) != 0)
		return fail(err, errlen, -EINVAL, path, "node_mask 0x%llx names "
			    "nodes beyond node_count %u (corrupt segment)",
			    (unsigned long long)h->node_mask, h->node_count);
	if ((rc = check_string(path, "exe", h->exe, sizeof(h->exe), err, errlen)) ||
	    (rc = check_string(path, "comm", h->comm, sizeof(h->comm), err, errlen)) ||
	    (rc = check_string(path, "policy", h->policy, sizeof(h->policy), err,
			       errlen)))
		return rc;
	return 0;
}

int stats_validate(const struct ns_stats_segment *s, char *err, size_t errlen)
{
	return validate("segment", s, err, errlen);
}

/* The file itself: what it is, who owns it, how big it is. */
static int check_file(const char *path, int fd, bool for_removal,
		      struct stat *st, char *err, size_t errlen)
{
	uid_t me = geteuid();

	if (fstat(fd, st))
		return fail(err, errlen, -errno, path, "cannot stat: %s",
			    strerror(errno));
	if (!S_ISREG(st->st_mode))
		return fail(err, errlen, -EINVAL, path, "not a regular file");
	if (st->st_nlink != 1)
		return fail(err, errlen, -EPERM, path, "has %lu hard links, a "
			    "segment has one", (unsigned long)st->st_nlink);
	if (me != 0 && st->st_uid != me)
		return fail(err, errlen, -EPERM, path, "owned by uid %u, not by you "
			    "(uid %u): not trusted", (unsigned)st->st_uid,
			    (unsigned)me);
	if ((st->st_mode & 07777) != 0600)
		return fail(err, errlen, -EPERM, path, "mode %04o, a segment has "
			    "mode 0600: not trusted", (unsigned)(st->st_mode & 07777));
	if ((uint64_t)st->st_size < sizeof(struct ns_stats_segment))
		return fail(err, errlen, -EINVAL, path, "truncated: %lld bytes, a "
			    "segment has %zu", (long long)st->st_size,
			    sizeof(struct ns_stats_segment));
	if ((uint64_t)st->st_size > sizeof(struct ns_stats_segment))
		return fail(err, errlen, -EINVAL, path, "oversized: %lld bytes, a "
			    "segment has %zu", (long long)st->st_size,
			    sizeof(struct ns_stats_segment));
	(void)for_removal;
	return 0;
}

static int read_all(const char *path, int fd, void *buf, size_t len,
		    char *err, size_t errlen)
{
	ssize_t n = pread(fd, buf, len, 0);

	if (n < 0)
		return fail(err, errlen, -errno, path, "cannot read: %s",
			    strerror(errno));
	if ((size_t)n != len)
		return fail(err, errlen, -EIO, path, "truncated while being read "
			    "(%zd of %zu bytes)", n, len);
	return 0;
}

/* Copy the segment under its seqlock: seq read before and after the copy
 * must be equal and even. A bounded number of tries, then an error. */
static int read_consistent(const char *path, int fd,
			   struct ns_stats_segment *s, char *err, size_t errlen)
{
	const off_t seq_off = offsetof(struct ns_stats_header, seq);
	unsigned odd = 0, changed = 0;

	for (int i = 0; i < STATS_READ_TRIES; i++) {
		uint64_t s1, s2;
		int rc;

		if (i >= 10) {
			struct timespec ts = { 0, 1000000 }; /* 1 ms */

			nanosleep(&ts, NULL);
		} else if (i) {
			sched_yield();
		}
		if (pread(fd, &s1, sizeof(s1), seq_off) != sizeof(s1))
			return fail(err, errlen, -EIO, path, "truncated while "
				    "being read");
		if (s1 & 1) {
			odd++;
			continue;
		}
		if ((rc = read_all(path, fd, s, sizeof(*s), err, errlen)))
			return rc;
		if (pread(fd, &s2, sizeof(s2), seq_off) != sizeof(s2))
			return fail(err, errlen, -EIO, path, "truncated while "
				    "being read");
		if (s1 == s2 && s->h.seq == s1)
			return 0;
		changed++;
	}
	if (odd == STATS_READ_TRIES)
		return fail(err, errlen, -EBUSY, path, "busy: seq stayed odd for "
			    "%d reads (writer stuck, or died mid-update)",
			    STATS_READ_TRIES);
	return fail(err, errlen, -EBUSY, path, "torn: no consistent copy in %d "
		    "reads (%u odd, %u changed under the reader)",
		    STATS_READ_TRIES, odd, changed);
}

/* Does the segment belong to the process it names? */
static int check_owner(const char *path, const struct stat *st,
		       struct stats_snapshot *snap, char *err, size_t errlen)
{
	const struct ns_stats_header *h = &snap->seg.h;
	long proc_uid = -1;
	const char *base = strrchr(path, '/');
	int pid;
	uint64_t start;

	base = base ? base + 1 : path;
	if (stats_parse_name(base, &pid, &start) == 0 &&
	    (pid != h->pid || start != h->start_time))
		return fail(err, errlen, -EINVAL, path, "names pid %d start %llu, "
			    "but its header says pid %d start %llu (not trusted)",
			    pid, (unsigned long long)start, h->pid,
			    (unsigned long long)h->start_time);
	snap->state = stats_state_image(h->pid, h->start_time, h->image);
	if (snap->state == STATS_LIVE &&
	    proc_has_uid(h->pid, st->st_uid, &proc_uid) == 0)
		return fail(err, errlen, -EPERM, path, "owned by uid %u, but "
			    "process %d runs as uid %ld (not trusted)",
			    (unsigned)st->st_uid, h->pid, proc_uid);
	return 0;
}

bool stats_names_live(const char *path)
{
	const char *base = strrchr(path, '/');
	uint64_t start;
	int pid;

	base = base ? base + 1 : path;
	return stats_parse_name(base, &pid, &start) == 0 &&
	       stats_state_of(pid, start) == STATS_LIVE;
}

/*
 * The writer creates the file, then sizes it, then writes the header: for a
 * moment a live process's segment is empty or all zeros. That is "being
 * created" (-EAGAIN), not corrupt, when the name's process is alive.
 */
static bool being_created(const char *path, const struct stat *st,
			  const struct ns_stats_header *h)
{
	if (!S_ISREG(st->st_mode) || /* a FIFO's size is 0 too */
	    (st->st_size != 0 && (h == NULL || h->magic != 0)))
		return false;
	return stats_names_live(path);
}

static int read_once(const char *path, bool for_removal,
		     struct stats_snapshot *snap, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	memset(snap, 0, sizeof(*snap));
	if (strlen(path) >= sizeof(snap->path))
		return fail(err, errlen, -ENAMETOOLONG, "segment",
			    "path too long");
	snprintf(snap->path, sizeof(snap->path), "%s", path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			return fail(err, errlen, rc, path, "is a symbolic link "
				    "(not followed: not trusted)");
		return fail(err, errlen, rc, path, "cannot open: %s", strerror(-rc));
	}
	rc = check_file(path, fd, for_removal, &st, err, errlen);
	if (rc == -EINVAL && being_created(path, &st, NULL))
		rc = fail(err, errlen, -EAGAIN, path, "still being created "
			  "(empty)");
	/* The constant fields first, so garbage is called garbage, not busy. */
	if (rc == 0)
		rc = read_all(path, fd, &snap->seg, sizeof(snap->seg), err, errlen);
	if (rc == 0 && being_created(path, &st, &snap->seg.h))
		rc = fail(err, errlen, -EAGAIN, path, "still being created "
			  "(header not written yet)");
	if (rc == 0)
		rc = check_identity(path, &snap->seg.h, err, errlen);
	if (rc == 0 && !for_removal)
		rc = read_consistent(path, fd, &snap->seg, err, errlen);
	close(fd);
	if (rc == 0)
		rc = validate(path, &snap->seg, err, errlen);
	if (rc == 0)
		rc = check_owner(path, &st, snap, err, errlen);
	return rc;
}

int stats_read_path(const char *path, bool for_removal,
		    struct stats_snapshot *snap, char *err, size_t errlen)
{
	int rc = -EAGAIN;

	/* A segment being created is complete within microseconds: wait up
	 * to about 100 ms, then say so. */
	for (int i = 0; i < 50 && rc == -EAGAIN; i++) {
		struct timespec ts = { 0, 2000000 };

		if (i)
			nanosleep(&ts, NULL);
		rc = read_once(path, for_removal, snap, err, errlen);
	}
	return rc;
}

int stats_read_pid(const char *dir, int pid, struct stats_snapshot *snap,
		   char *err, size_t errlen)
{
	struct stats_entry *v;
	const struct stats_entry *pick = NULL;
	char path[4096];
	size_t n;
	int rc;

	if (dir == NULL)
		dir = STATS_DIR;
	if ((rc = stats_list(dir, &v, &n, err, errlen)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].name_ok || v[i].pid != pid)
			continue;
		if (pick == NULL || v[i].state == STATS_LIVE ||
		    (pick->state != STATS_LIVE && v[i].start > pick->start))
			pick = &v[i];
	}
	if (pick == NULL) {
		uint64_t start;
		bool alive = stats_proc_start(pid, &start) == 0;

		free(v);
		snprintf(path, sizeof(path), "pid %d", pid);
		if (alive && stats_maps_have_shim("", pid) == 1)
			return fail(err, errlen, -EAGAIN, path, "runs under "
				    "numashim but has no stats segment in %s "
				    "yet: it is made at the first refresh, a "
				    "second or more after the start, once the "
				    "program allocates or forks (none with "
				    "NUMASHIM_STATS=off)", dir);
		return fail(err, errlen, -ENOENT, path, alive ?
			    "no stats segment %s/%s%d.* (not running under "
			    "numashim, or NUMASHIM_STATS=off)" :
			    "no such process, and no stats segment %s/%s%d.*",
			    dir, NS_STATS_PREFIX, pid);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, pick->name);
	free(v);
	return stats_read_path(path, false, snap, err, errlen);
}
