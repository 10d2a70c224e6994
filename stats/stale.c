/*
 * Segment names and the processes behind them (see stale.h), shared by the
 * numashim tool and the shim. The shim calls stats_proc_start for itself
 * (no allocation: snprintf of a number, strtok_r) and stats_remove_stale
 * only on its stats helper thread (opendir allocates).
 */
#include "stats/stale.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A decimal number without sign, leading junk or overflow. */
static int parse_u64(const char *s, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (s == end)
		return -EINVAL;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int stats_parse_name(const char *name, int *pid, uint64_t *start)
{
	size_t plen = strlen(NS_STATS_PREFIX);
	const char *p, *dot;
	uint64_t v;

	if (strncmp(name, NS_STATS_PREFIX, plen) != 0)
		return -EINVAL;
	p = name + plen;
	dot = strchr(p, '.');
	if (dot == NULL || parse_u64(p, dot, &v) || v == 0 || v > INT_MAX)
		return -EINVAL;
	*pid = (int)v;
	return parse_u64(dot + 1, dot + strlen(dot), start);
}

/* Read a small /proc or /sys file into buf (NUL-terminated, cut to
 * len - 1); -errno on failure. O_NONBLOCK: a FIFO where such a file should
 * be (numashim doctor --root reads made-up trees) must not hang us. */
int stats_read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	size_t have = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -errno;
	while (have + 1 < len && (n = read(fd, buf + have, len - 1 - have)) > 0)
		have += (size_t)n;
	close(fd);
	buf[have] = '\0';
	return n < 0 ? -EIO : 0;
}

/* Fields 3 (state), 20 (threads, into *threads if not NULL), 22 (start)
 * and, if `image` is not NULL, 28 of /proc/PID/stat. */
static int proc_fields(int pid, uint64_t *start, char *state,
		       uint64_t *threads, uint64_t *image)
{
	char path[64], buf[2048], *p, *tok, *save = NULL;
	int field = 2, last = image ? 28 : 22;

	if (pid == 0) /* ourselves, even where /proc is another namespace's */
		snprintf(path, sizeof(path), "/proc/self/stat");
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (stats_read_small(path, buf, sizeof(buf)))
		return -ESRCH;
	/* comm may hold spaces and ')': the fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EIO;
	for (tok = strtok_r(p + 1, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (++field == 3)
			*state = tok[0];
		if (field == 20 && threads &&
		    parse_u64(tok, tok + strlen(tok), threads))
			return -EIO;
		if (field == 22 && parse_u64(tok, tok + strlen(tok), start))
			return -EIO;
		if (field == 28 && image &&
		    parse_u64(tok, tok + strlen(tok), image))
			return -EIO;
		if (field == last)
			return 0;
	}
	return -EIO;
}

int stats_proc_image(int pid, uint64_t *start, char *state, uint64_t *image)
{
	return proc_fields(pid, start, state, NULL, image);
}

int stats_proc_stat(int pid, uint64_t *start, char *state)
{
	return proc_fields(pid, start, state, NULL, NULL);
}

int stats_proc_start(int pid, uint64_t *start)
{
	char state;

	return stats_proc_stat(pid, start, &state);
}

/* The boottime offset of pid's time namespace (0: ours), in nanoseconds:
 * 0 where there is none (no time namespaces, or the file cannot be
 * read). */
static int64_t boottime_offset(int pid)
{
	char path[48], buf[256], *line, *save = NULL;
	long long sec, nsec;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/timens_offsets");
	if (stats_read_small(path, buf, sizeof(buf)))
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "boottime %lld %lld", &sec, &nsec) == 2 &&
		    sec > -(1LL << 40) && sec < (1LL << 40))
			return (int64_t)sec * 1000000000 + nsec;
	return 0;
}

/*
 * A start time in /proc is shown shifted by the reader's time namespace's
 * boottime offset: a process in another time namespace (unshare --time
 * --boottime, some container runtimes) wrote its start time as it saw it,
 * which is not ours. Its start matches ours once both offsets are taken
 * into account; gc removed a live process's segment as of a reused pid
 * without this (found by a review). Within one clock tick: offsets may
 * carry nanoseconds, and the kernel rounds each view down.
 */
static bool same_start_across_time_ns(int pid, uint64_t now, uint64_t start)
{
	int64_t theirs = boottime_offset(pid), ours = boottime_offset(0);
	int64_t hz = sysconf(_SC_CLK_TCK), d, want;

	if (theirs == ours || hz <= 0)
		return false;
	d = (ours - theirs) / (1000000000 / hz); /* ticks from theirs to ours */
	want = (int64_t)start + d;
	return (int64_t)now >= want - 1 && (int64_t)now <= want + 1;
}

enum stats_state stats_state_image(int pid, uint64_t start, uint64_t image)
{
	uint64_t now, img = 0, threads = 0;
	char state = '?';

	/* A zombie has exited: its segment will never change again. But a
	 * process whose main thread called pthread_exit shows its leader's
	 * 'Z' while its other threads run on: the thread count (the leader
	 * included, 1 once all have ended) tells the two apart. */
	if (proc_fields(pid, &now, &state, &threads, image ? &img : NULL) ||
	    state == 'X' || (state == 'Z' && threads <= 1))
		return STATS_DEAD;
	if (now != start && !same_start_across_time_ns(pid, now, start))
		return STATS_REUSED;
	return image && img && img != image ? STATS_EXECED : STATS_LIVE;
}

enum stats_state stats_state_of(int pid, uint64_t start)
{
	return stats_state_image(pid, start, 0);
}

uint64_t stats_pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Does this pid name no process at all, in our pid namespace? Only ESRCH
 * says so: a process of another user (EPERM), hidden from /proc or not,
 * is there, and so is one whose main thread has ended (a zombie leader). */
static bool no_such_pid(int pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
}

/* A plain file of ours holding a segment header written in our pid
 * namespace, whose pid is `pid`? */
static bool removable(int dfd, const char *name, int pid, uid_t me,
		      uint64_t ns, struct stat *st)
{
	struct ns_stats_header h;
	ssize_t n;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
			       O_NOCTTY);
	if (fd < 0)
		return false;
	n = fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_uid == me &&
		    st->st_nlink == 1 ? pread(fd, &h, sizeof(h), 0) : -1;
	close(fd);
	return n == (ssize_t)sizeof(h) && h.magic == NS_STATS_MAGIC &&
	       h.version == NS_STATS_VERSION && h.pid_ns == ns && h.pid == pid;
}

/*
 * Our own segments in `dir` whose process is gone: no process has the pid
 * (kill(pid, 0) fails with ESRCH) in our pid namespace, which is where the
 * segment says it was written, and the file is ours (our euid, a plain
 * file, one link) with a segment header naming that pid. Start times are
 * not compared: /proc may belong to another pid namespace, or show them
 * shifted by a time namespace; a pid that is in use again keeps its old
 * segment until `numashim stat --gc`. Cheap checks first (the owner, then
 * the pid), so others' files cost one fstatat. `self`'s own is skipped.
 */
int stats_remove_stale(const char *dir, pid_t self)
{
	struct dirent *de;
	int removed = 0, dfd;
	uid_t me = geteuid();
	uint64_t ns = stats_pid_ns();
	DIR *d;

	if (ns == 0)
		return 0;
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st, again;
		uint64_t start;
		int pid;

		if (stats_parse_name(de->d_name, &pid, &start) || pid == self ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != me ||
		    !no_such_pid(pid) ||
		    !removable(dfd, de->d_name, pid, me, ns, &st))
			continue;
		/* Still the file we read (it cannot be replaced by another
		 * user in a sticky directory; this guards against the rest). */
		if (fstatat(dfd, de->d_name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
		    again.st_ino == st.st_ino && again.st_dev == st.st_dev &&
		    unlinkat(dfd, de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
