/*
 * Segment names and the processes behind them (see stale.h), shared by the
 * numashim tool and the shim's stats helper thread. Not for the allocation
 * path: this uses stdio's snprintf and, for the directory, malloc.
 */
#include "stats/stale.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* Read a small /proc file into buf (NUL-terminated); -errno on failure. */
int stats_read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

/* Field 22 (start time) and field 3 (state) of /proc/PID/stat. */
static int proc_stat(int pid, uint64_t *start, char *state)
{
	char path[64], buf[2048], *p, *tok, *save = NULL;
	int field = 2;

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
		if (field == 22)
			return parse_u64(tok, tok + strlen(tok), start) ? -EIO : 0;
	}
	return -EIO;
}

int stats_proc_start(int pid, uint64_t *start)
{
	char state;

	return proc_stat(pid, start, &state);
}

enum stats_state stats_state_of(int pid, uint64_t start)
{
	uint64_t now;
	char state = '?';

	/* A zombie has exited: its segment will never change again. */
	if (proc_stat(pid, &now, &state) || state == 'Z' || state == 'X')
		return STATS_DEAD;
	return now == start ? STATS_LIVE : STATS_REUSED;
}

uint64_t stats_pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* A segment of our uid, written in our pid namespace? */
static bool removable(int fd, uid_t me, uint64_t ns)
{
	struct ns_stats_header h;
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == me &&
	       pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	       h.magic == NS_STATS_MAGIC && h.version == NS_STATS_VERSION &&
	       h.pid_ns == ns;
}

/*
 * Our own stale segments in `dir`: the process is gone or its pid reused,
 * the file is ours (same uid, a plain file) and holds a segment header
 * written in our pid namespace (elsewhere a pid we cannot see may be
 * alive). Anything else, and `self`'s own, is left alone.
 */
int stats_remove_stale(const char *dir, pid_t self)
{
	char path[PATH_MAX];
	struct dirent *de;
	int removed = 0;
	uid_t me = geteuid();
	uint64_t ns = stats_pid_ns();
	DIR *d;

	if (ns == 0)
		return 0;
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		uint64_t start;
		int pid, fd;

		if (stats_parse_name(de->d_name, &pid, &start) || pid == self ||
		    stats_state_of(pid, start) == STATS_LIVE)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (removable(fd, me, ns) && unlink(path) == 0)
			removed++;
		close(fd);
	}
	closedir(d);
	return removed;
}
