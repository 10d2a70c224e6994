/*
 * `numashim doctor`, the processes: those under numashim (their stats
 * segments: remote pages of those that place memory, stale segments) and
 * each PID given (where its memory is against where it may run).
 */
#include "tools/doctor.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Remote pages % of a segment (sampled pages found on another node), or
 * -1 when nothing was sampled. */
static double seg_remote(const struct ns_stats_segment *s)
{
	uint64_t shown = stats_nodes_shown(s), sp = 0, fb = 0;

	for (int k = 0; k < NS_STATS_MAX_NODES; k++)
		if (shown >> k & 1) {
			sp += s->node[k].sampled_pages;
			fb += s->node[k].fallbacks;
		}
	return sp ? 100.0 * (double)fb / (double)sp : -1.0;
}

void doctor_processes(struct doctor *d)
{
	char err[STATS_ERR_LEN], path[PATH_MAX], comm[64];
	struct stats_snapshot *snap = malloc(sizeof(*snap));
	int live = 0, active = 0, stale = 0, unread = 0;
	struct stats_entry *e = NULL;
	size_t n = 0;

	if (snap == NULL || stats_list(d->dir, &e, &n, err, sizeof(err))) {
		doctor_add(d, L_INFO, "processes", NULL, "%s", snap ? err : "out of memory");
		free(snap);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		double r;

		if (!e[i].name_ok)
			continue;
		if (e[i].state != STATS_LIVE) {
			stale++;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", d->dir, e[i].name);
		if (stats_read_path(path, false, snap, err, sizeof(err))) {
			unread++; /* another user's, or busy */
			continue;
		}
		live++;
		if (!snap->seg.h.active)
			continue;
		active++;
		r = seg_remote(&snap->seg);
		if (r >= 5.0) {
			tool_clean(snap->seg.h.comm, comm, sizeof(comm));
			doctor_add(d, doctor_level(r), "processes", "numashim stat PID shows "
			    "the nodes; a thread pinned away from its memory, or a "
			    "node short of free memory, are the usual causes",
			    "pid %d (%s) under numashim: %.1f %% of its sampled "
			    "pages are on another node than numashim meant: %s",
			    e[i].pid, comm, r, tool_level(r));
		}
	}
	doctor_add(d, live ? L_OK : L_INFO, "processes", NULL, "%d process%s under "
	    "numashim in %s (%d placing memory, %d passing through)%s", live,
	    live == 1 ? "" : "es", d->dir, active, live - active,
	    unread ? "; some segments could not be read (another user's: "
	    "run as root to see all)" : "");
	if (stale)
		doctor_add(d, L_WARN, "processes", "numashim stat --gc",
		    "%d stats segment%s of processes that are gone (killed) "
		    "in %s", stale, stale == 1 ? "" : "s", d->dir);
	free(e);
	free(snap);
}

/* ------------------------------------------------------------ one PID */

static void mark_node(void *ctx, long cpu)
{
	struct list_ctx *c = ctx;

	if (c->d->cpu_node[cpu] >= 0)
		c->node |= 1 << (c->d->cpu_node[cpu] & 31);
}

/* The nodes whose CPUs the process may run on (its main thread's
 * Cpus_allowed_list), as a mask of node ids below 32; 0 if unknown. */
static int run_nodes(struct doctor *d, int pid)
{
	char rel[64], text[8192], *p;
	struct list_ctx c = { d, 0 };

	snprintf(rel, sizeof(rel), "/proc/%d/status", pid);
	if (doctor_read(d, rel, text, sizeof(text)) ||
	    (p = strstr(text, "Cpus_allowed_list:")) == NULL)
		return 0;
	p += strlen("Cpus_allowed_list:");
	p += strspn(p, " \t");
	p[strcspn(p, "\n")] = '\0';
	if (policy_list_foreach(p, POLICY_MAX_CPUS, mark_node, &c))
		return 0;
	return c.node;
}

void doctor_pid(struct doctor *d, int pid)
{
	char rel[64], comm[64], raw[64], what[48], runs[96], err[STATS_ERR_LEN];
	uint64_t bytes[NS_STATS_MAX_NODES], total = 0, top = 0;
	struct stats_snapshot *snap = malloc(sizeof(*snap));
	int top_node = -1, mask;
	bool under = false;

	snprintf(what, sizeof(what), "pid %d", pid);
	snprintf(rel, sizeof(rel), "/proc/%d/comm", pid);
	if (doctor_read(d, rel, raw, sizeof(raw))) {
		doctor_add(d, L_WARN, what, NULL, "no such process (or /proc/%d is not "
		    "readable)", pid);
		d->unreadable = true;
		free(snap);
		return;
	}
	raw[strcspn(raw, "\n")] = '\0';
	tool_clean(raw, comm, sizeof(comm));
	if (snap && stats_read_pid(d->dir, pid, snap, err, sizeof(err)) == 0 &&
	    snap->state == STATS_LIVE) {
		double r = seg_remote(&snap->seg);

		under = true;
		if (!snap->seg.h.active)
			doctor_add(d, L_INFO, what, NULL, "%s runs under numashim, which "
			    "passes through (%s)", comm, snap->seg.h.policy);
		else if (r < 0)
			doctor_add(d, L_OK, what, NULL, "%s runs under numashim (%s); no "
			    "pages sampled yet", comm, snap->seg.h.policy);
		else
			doctor_add(d, doctor_level(r), what, r >= 5.0 ? "numashim stat "
			    "PID shows the nodes" : NULL, "%s runs under numashim "
			    "(%s): %.1f %% of its sampled pages on another node "
			    "than meant: %s", comm, snap->seg.h.policy, r,
			    tool_level(r));
	}
	free(snap);
	snprintf(rel, sizeof(rel), "/proc/%d/numa_maps", pid);
	{
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s%s", d->root, rel);
		if (stats_numa_maps(path, false, bytes)) {
			doctor_add(d, L_INFO, what, NULL, "%s: cannot read its numa_maps "
			    "(another user's process: run as root)", comm);
			return;
		}
	}
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		total += bytes[k];
		if (bytes[k] > top) {
			top = bytes[k];
			top_node = k;
		}
	}
	mask = run_nodes(d, pid);
	snprintf(runs, sizeof(runs), "?");
	if (mask) {
		size_t at = 0;

		for (int k = 0; k < 32 && at < sizeof(runs); k++)
			if (mask >> k & 1)
				at += (size_t)snprintf(runs + at, sizeof(runs) - at,
						       "%s%d", at ? "," : "", k);
	}
	if (total < FIRST_TOUCH_MIN || top_node < 0 || mask == 0 || d->nodes < 2) {
		doctor_add(d, L_OK, what, NULL, "%s: %.1f MiB resident, may run on "
		    "node(s) %s", comm, (double)total / 1048576.0, runs);
		return;
	}
	if (!(mask >> top_node & 1) && top * 10 >= total * 9)
		doctor_add(d, L_CRIT, what, "bind it where its memory is (numactl "
		    "--cpunodebind=N --membind=N), or run it under numashim",
		    "%s: %.0f %% of its %.1f MiB is on node %d, but it may only "
		    "run on node(s) %s: every access is remote", comm,
		    100.0 * (double)top / (double)total,
		    (double)total / 1048576.0, top_node, runs);
	else if (__builtin_popcount((unsigned)mask) > 1 && top * 10 >= total * 9 &&
		 !under)
		doctor_add(d, L_WARN, what, "run it under numashim (numashim run -- CMD, "
		    "or numashim dropin SERVICE --write), or interleave it "
		    "(numactl --interleave=all)", "%s: %.0f %% of its %.1f MiB is "
		    "on node %d while its threads may run on nodes %s: one "
		    "thread probably touched it all first (first-touch "
		    "placement), and the others reach it remotely", comm,
		    100.0 * (double)top / (double)total,
		    (double)total / 1048576.0, top_node, runs);
	else
		doctor_add(d, L_OK, what, NULL, "%s: %.1f MiB resident, the most (%.0f "
		    "%%) on node %d; may run on node(s) %s", comm,
		    (double)total / 1048576.0, 100.0 * (double)top / (double)total,
		    top_node, runs);
}
