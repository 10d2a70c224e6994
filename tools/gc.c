/*
 * `numashim stat --gc`: remove the segments of processes that are gone (no
 * such pid, or the pid reused by a process with another start time) or
 * have exec'd another program since (stats/layout.h, `image`). Each
 * is validated first (a file that is not a real segment is kept and
 * reported); without root only our own are considered. A segment written
 * in another pid namespace (a container sharing /dev/shm) is kept: its pid
 * names another process here. One that vanishes meanwhile (the stats helper
 * of a running shim removes stale segments too) is no error.
 *
 * The judgement of one entry (tool_gc_verdict) is doctor's too: it counts
 * as stale exactly what --gc removes.
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

enum tool_verdict tool_gc_verdict(const char *path, const struct stats_entry *e,
				  uint64_t pid_ns, struct stats_snapshot *snap,
				  char *err, size_t errlen)
{
	struct stat st;
	uid_t me = geteuid();

	/* Live by its name: stale only if its process exec'd since. */
	if (e->name_ok && e->state == STATS_LIVE &&
	    (stats_read_path(path, true, snap, err, errlen) ||
	     snap->state != STATS_EXECED))
		return TOOL_V_LIVE;
	if (me != 0 && lstat(path, &st) == 0 && st.st_uid != me)
		return TOOL_V_OTHERS;
	if (!e->name_ok) {
		char clean[PATH_MAX];

		/* Anyone may name a file so, and root judges them all: no
		 * escape sequence of its reaches the terminal. */
		tool_clean(path, clean, sizeof(clean));
		snprintf(err, errlen, "%s: not a segment name (%s<pid>.<start>)",
			 clean, NS_STATS_PREFIX);
		return TOOL_V_INVALID;
	}
	if (stats_read_path(path, true, snap, err, errlen))
		return gone(path) ? TOOL_V_VANISHED : TOOL_V_INVALID;
	if (snap->state == STATS_LIVE)
		return TOOL_V_LIVE; /* its process came back to life: a race */
	if (snap->seg.h.pid_ns && snap->seg.h.pid_ns != pid_ns)
		return TOOL_V_OTHER_NS;
	return TOOL_V_STALE;
}

int tool_gc(const char *dir)
{
	uint64_t ns = stats_pid_ns();
	char err[STATS_ERR_LEN], path[PATH_MAX];
	struct stats_snapshot *snap;
	struct stats_entry *e;
	int removed = 0, kept = 0, other_ns = 0;
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
		snprintf(path, sizeof(path), "%s/%s", dir, e[i].name);
		switch (tool_gc_verdict(path, &e[i], ns, snap, err, sizeof(err))) {
		case TOOL_V_LIVE:
		case TOOL_V_OTHERS:     /* not ours to remove */
		case TOOL_V_VANISHED:   /* removed meanwhile (a shim's helper) */
			break;
		case TOOL_V_INVALID:
			tool_err("kept %s", err);
			kept++;
			break;
		case TOOL_V_OTHER_NS:
			/* Its pid means another process here, if any. */
			printf("kept %s (pid %d): written in another pid namespace\n",
			       path, e[i].pid);
			other_ns++;
			break;
		case TOOL_V_STALE:
			if (unlink(path) == 0) {
				printf("removed %s (pid %d, %s)\n", path, e[i].pid,
				       stats_state_name(snap->state));
				removed++;
			} else if (errno != ENOENT) {
				tool_err("kept %s: cannot remove: %s", path,
					 strerror(errno));
				kept++;
			}
			break;
		}
	}
	free(snap);
	free(e);
	if (removed + kept + other_ns == 0) {
		printf("no stale segments in %s\n", dir);
	} else {
		printf("%s: %d removed, %d kept", dir, removed, kept + other_ns);
		if (other_ns)
			printf(" (%d written in another pid namespace: a --gc "
			       "run there judges %s)", other_ns,
			       other_ns == 1 ? "it" : "them");
		putchar('\n');
	}
	return kept ? TOOL_FAIL : TOOL_OK;
}
