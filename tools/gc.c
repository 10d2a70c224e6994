/*
 * `numashim stat --gc`: remove the segments of processes that are gone (no
 * such pid, or the pid reused by a process with another start time) or
 * have exec'd another program since (stats/layout.h, `image`). Each
 * is validated first (a file that is not a real segment is kept and
 * reported); without root only our own are considered. A segment written
 * in another pid namespace (a container sharing /dev/shm) is kept: its pid
 * names another process here. One that vanishes meanwhile (the stats helper
 * of a running shim removes stale segments too) is no error.
 */
#include "tools/tool.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool gone(const char *path)
{
	struct stat st;

	return lstat(path, &st) != 0 && errno == ENOENT;
}

int tool_gc(const char *dir)
{
	uint64_t ns = stats_pid_ns();
	char err[STATS_ERR_LEN], path[PATH_MAX];
	struct stats_snapshot *snap;
	struct stats_entry *e;
	int removed = 0, kept = 0;
	uid_t me = geteuid();
	size_t n;

	if (dir == NULL)
		dir = STATS_DIR;
	if (stats_list(dir, &e, &n, err, sizeof(err))) {
		tool_err("%s", err);
		return TOOL_FAIL;
	}
	snap = malloc(sizeof(*snap));
	if (snap == NULL) {
		free(e);
		tool_err("out of memory");
		return TOOL_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, e[i].name);
		/* Live by its name: stale only if its process exec'd since. */
		if (e[i].name_ok && e[i].state == STATS_LIVE &&
		    (stats_read_path(path, true, snap, err, sizeof(err)) ||
		     snap->state != STATS_EXECED))
			continue;
		if (me != 0 && lstat(path, &st) == 0 && st.st_uid != me)
			continue; /* not ours to remove */
		if (!e[i].name_ok) {
			tool_err("kept %s: not a segment name (%s<pid>.<start>)",
				 path, NS_STATS_PREFIX);
			kept++;
		} else if (stats_read_path(path, true, snap, err, sizeof(err))) {
			if (gone(path))
				continue; /* removed meanwhile (a shim's helper) */
			tool_err("kept %s", err);
			kept++;
		} else if (snap->state == STATS_LIVE) {
			continue; /* its process came back to life: a race */
		} else if (snap->seg.h.pid_ns && snap->seg.h.pid_ns != ns) {
			/* Its pid means another process here, if any. */
			printf("kept %s (pid %d): written in another pid namespace\n",
			       path, e[i].pid);
		} else if (unlink(path)) {
			if (errno == ENOENT)
				continue;
			tool_err("kept %s: cannot remove: %s", path, strerror(errno));
			kept++;
		} else {
			printf("removed %s (pid %d, %s)\n", path, e[i].pid,
			       stats_state_name(snap->state));
			removed++;
		}
	}
	free(snap);
	free(e);
	if (removed == 0 && kept == 0)
		printf("no stale segments in %s\n", dir);
	return kept ? TOOL_FAIL : TOOL_OK;
}
