/*
 * `numashim doctor`, the processes: those under numashim (their stats
 * segments: remote pages of those that place memory, stale segments) and
 * each PID given (where its memory is, and where its cpuset lets it take
 * memory, against where it may run).
 */
#include "tools/doctor.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/*
 * Remote pages % of a segment (sampled pages found on another node), or
 * -1 when nothing was sampled. The sums saturate as stat's do
 * (tool_add_sat), and no more pages fall back than were sampled: *damaged
 * when either had to be corrected (only a damaged segment gets there; the
 * share is then not rated).
 */
static double seg_remote(const struct ns_stats_segment *s, bool *damaged)
{
	uint64_t shown = stats_nodes_shown(s), sp = 0, fb = 0;
	bool bad = false;

	for (int k = 0; k < NS_STATS_MAX_NODES; k++)
		if (shown >> k & 1) {
			bad |= tool_add_sat(&sp, s->node[k].sampled_pages);
			bad |= tool_add_sat(&fb, s->node[k].fallbacks);
			bad |= s->node[k].fallbacks > s->node[k].sampled_pages;
		}
	if (fb > sp)
		fb = sp;
	*damaged = bad;
	return sp ? 100.0 * (double)fb / (double)sp : -1.0;
}

static const char damaged_text[] = "its segment's page counters are "
	"damaged (a sum beyond 2^64-1, or more pages fallen back than "
	"sampled): its remote share is not rated";

/* The tail of the count line: processes under numashim that have no
 * segment yet (idle since their first second). */
static const char *pending_note(int pending)
{
	static char buf[128];

	if (pending == 0)
		return "";
	snprintf(buf, sizeof(buf), "; %d more with no statistics yet (no "
		 "segment: idle since their first second)", pending);
	return buf;
}

/* The tail of the count line: segments that could not be read, and why
 * (the reader's line of the first, cleaned: a file name may hold any
 * byte). */
static const char *unread_note(int unread, const char *first)
{
	static char buf[400];
	char clean[256];

	if (unread == 0)
		return "";
	tool_clean(first, clean, sizeof(clean));
	snprintf(buf, sizeof(buf), "; %d segment%s could not be read (%s%s)",
		 unread, unread == 1 ? "" : "s", unread == 1 ? "" : "the first: ",
		 clean);
	return buf;
}

/* Counts of the segments that are not live, by stat --gc's verdict. */
struct not_live {
	int stale, others, other_ns, invalid;
	char invalid_err[STATS_ERR_LEN];
};

/*
 * Stale are exactly the segments `numashim stat --gc` removes (its
 * verdict, tool_gc_verdict): a warning with that fix. Those it leaves, an
 * other user's (we are not root), another pid namespace's, a file that is
 * no valid segment, are noted only: the fix would not remove them.
 */
static void report_not_live(struct doctor *d, const struct not_live *nl)
{
	char clean[256];

	if (nl->stale)
		doctor_add(d, L_WARN, "processes", "numashim stat --gc",
		    "%d stats segment%s of processes that are gone (killed) "
		    "in %s", nl->stale, nl->stale == 1 ? "" : "s", d->dir);
	if (nl->others)
		doctor_add(d, L_INFO, "processes", NULL, "%d stats segment%s of "
		    "other users' processes that are gone in %s: not yours to "
		    "remove (root's numashim stat --gc removes them)", nl->others,
		    nl->others == 1 ? "" : "s", d->dir);
	if (nl->other_ns)
		doctor_add(d, L_INFO, "processes", NULL, "%d stats segment%s in "
		    "%s written in another pid namespace (a container sharing "
		    "it): not judged here (numashim stat --gc run there removes "
		    "stale ones)", nl->other_ns, nl->other_ns == 1 ? "" : "s",
		    d->dir);
	if (nl->invalid) {
		tool_clean(nl->invalid_err, clean, sizeof(clean));
		doctor_add(d, L_INFO, "processes", NULL, "%d file%s in %s named "
		    "like stats segments that numashim stat --gc keeps (not "
		    "valid segments%s: %s)", nl->invalid, nl->invalid == 1 ?
		    "" : "s", d->dir, nl->invalid == 1 ? "" : "; the first", clean);
	}
}

void doctor_processes(struct doctor *d)
{
	char err[STATS_ERR_LEN], path[PATH_MAX], comm[64];
	char unread_err[STATS_ERR_LEN] = "";
	struct stats_snapshot *snap = malloc(sizeof(*snap));
	int live = 0, active = 0, unread = 0, named = 0, more = 0;
	int pending = 0;
	enum level more_level = L_OK;
	struct not_live nl = { 0 };
	struct stats_entry *e = NULL;
	uint64_t ns = stats_pid_ns();
	size_t n = 0, nquiet = 0;
	int *quiet = NULL;

	/* Those under numashim with no segment yet (stat.c's quiet_scan),
	 * where /proc and the directory go together: looked for first, so
	 * that one that makes its segment meanwhile is counted once. */
	if ((d->root[0] || strcmp(d->dir, STATS_DIR) == 0) &&
	    stats_shim_pids(d->root, &quiet, &nquiet))
		nquiet = 0;
	if (snap == NULL || stats_list(d->dir, &e, &n, err, sizeof(err))) {
		doctor_add(d, L_INFO, "processes", NULL, "%s", snap ? err : "out of memory");
		free(snap);
		free(quiet);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool damaged;
		double r;

		snprintf(path, sizeof(path), "%s/%s", d->dir, e[i].name);
		switch (tool_gc_verdict(path, &e[i], ns, snap, err, sizeof(err))) {
		case TOOL_V_LIVE:
			break;
		case TOOL_V_STALE:
			nl.stale++;
			continue;
		case TOOL_V_OTHERS:
			nl.others += e[i].name_ok;
			continue;
		case TOOL_V_OTHER_NS:
			nl.other_ns++;
			continue;
		case TOOL_V_INVALID:
			if (nl.invalid++ == 0)
				snprintf(nl.invalid_err, sizeof(nl.invalid_err),
					 "%s", err);
			continue;
		case TOOL_V_VANISHED:
			continue;
		}
		if (stats_read_path(path, false, snap, err, sizeof(err))) {
			if (unread++ == 0) /* another user's, or busy */
				snprintf(unread_err, sizeof(unread_err), "%s", err);
			continue;
		}
		if (snap->state != STATS_LIVE)
			continue; /* its process ended meanwhile */
		live++;
		for (size_t q = 0; q < nquiet; q++)
			if (quiet[q] == e[i].pid)
				quiet[q] = 0;
		if (!snap->seg.h.active)
			continue;
		active++;
		r = seg_remote(&snap->seg, &damaged);
		tool_clean(snap->seg.h.comm, comm, sizeof(comm));
		if (damaged) {
			doctor_add(d, L_INFO, "processes", NULL, "pid %d (%s) under "
			    "numashim: %s", e[i].pid, comm, damaged_text);
		} else if (doctor_level(r) > L_OK && named == SHOWN_PROCESSES) {
			more++; /* one line for the rest, at their worst level */
			if (doctor_level(r) > more_level)
				more_level = doctor_level(r);
		} else if (doctor_level(r) > L_OK) {
			named++;
			doctor_add(d, doctor_level(r), "processes", "numashim stat PID shows "
			    "the nodes; a thread pinned away from its memory, or a "
			    "node short of free memory, are the usual causes",
			    "pid %d (%s) under numashim: " TOOL_PCT " %% of its "
			    "sampled pages are on another node than numashim meant: "
			    "%s", e[i].pid, comm, r, tool_level(r));
		}
	}
	if (more)
		doctor_add(d, more_level, "processes", "numashim stat lists them all",
		    "%d more process%s under numashim with 5 %% or more of their "
		    "sampled pages on another node", more, more == 1 ? "" : "es");
	for (size_t q = 0; q < nquiet; q++)
		if (quiet[q] != 0)
			pending++;
	doctor_add(d, live ? L_OK : L_INFO, "processes", NULL, "%d process%s under "
	    "numashim in %s (%d placing memory, %d passing through)%s%s", live,
	    live == 1 ? "" : "es", d->dir, active, live - active,
	    unread_note(unread, unread_err), pending_note(pending));
	report_not_live(d, &nl);
	free(e);
	free(snap);
	free(quiet);
}

/* ------------------------------------------------------------ one PID */

struct run_ctx {
	const struct doctor *d;
	uint64_t nodes;
};

static void mark_node(void *ctx, long cpu)
{
	struct run_ctx *c = ctx;

	if (cpu < POLICY_MAX_CPUS && c->d->cpu_node[cpu] >= 0)
		c->nodes |= 1ULL << c->d->cpu_node[cpu];
}

/* Calls fn for each number of the list on the line "KEY:" of the status
 * file REL (e.g. Cpus_allowed_list); false if it is unreadable, missing
 * or garbled (fn may have been called for the numbers before the bad
 * token). */
static bool status_list(const struct doctor *d, const char *rel,
			const char *key, void (*fn)(void *, long), void *ctx)
{
	char text[8192], *p;

	if (doctor_read(d, rel, text, sizeof(text)) ||
	    (p = strstr(text, key)) == NULL)
		return false;
	p += strlen(key);
	p += strspn(p, " \t");
	p[strcspn(p, "\n")] = '\0';
	return policy_list_foreach(p, 1L << 20, fn, ctx) == 0;
}

/* Adds the nodes of one task's Cpus_allowed_list; false if unreadable or
 * garbled (then nothing: the CPUs before the bad token say nothing sure). */
static bool task_nodes(const struct doctor *d, const char *rel,
		       struct run_ctx *c)
{
	struct run_ctx one = { d, 0 };

	if (!status_list(d, rel, "Cpus_allowed_list:", mark_node, &one))
		return false;
	c->nodes |= one.nodes;
	return true;
}

#define MAX_TASKS 4096

/* The nodes whose CPUs the process's threads may run on (the union of
 * their Cpus_allowed_list: a main thread pinned to one CPU speaks for
 * itself only), as a mask of node ids; 0 if unknown. */
static uint64_t run_nodes(const struct doctor *d, int pid)
{
	struct run_ctx c = { d, 0 };
	char rel[96], path[PATH_MAX];
	struct dirent *e;
	int tasks = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/proc/%d/task", d->root, pid);
	dir = opendir(path);
	while (dir && tasks < MAX_TASKS && (e = readdir(dir)) != NULL) {
		char *end;
		long tid = strtol(e->d_name, &end, 10);

		if (*end || tid <= 0)
			continue;
		snprintf(rel, sizeof(rel), "/proc/%d/task/%ld/status", pid, tid);
		tasks += task_nodes(d, rel, &c);
	}
	if (dir)
		closedir(dir);
	if (tasks == 0) { /* no task directory: the process's own status */
		snprintf(rel, sizeof(rel), "/proc/%d/status", pid);
		task_nodes(d, rel, &c);
	}
	return c.nodes;
}

static const struct node *node_by_id(const struct doctor *d, int id)
{
	for (int i = 0; i < d->nodes; i++)
		if (d->node[i].id == id)
			return &d->node[i];
	return NULL;
}

static void mark_mem_node(void *ctx, long node)
{
	uint64_t *mask = ctx;

	if (node >= 0 && node < 64)
		*mask |= 1ULL << node;
}

/* The nodes of the process's Mems_allowed_list (its cpuset's
 * cpuset.mems), as a mask of node ids; 0 if unknown. */
static uint64_t mem_nodes(const struct doctor *d, int pid)
{
	char rel[64];
	uint64_t mask = 0;

	snprintf(rel, sizeof(rel), "/proc/%d/status", pid);
	return status_list(d, rel, "Mems_allowed_list:", mark_mem_node, &mask) ?
	       mask : 0;
}

/* "0,2" for a mask of node ids. */
static void format_nodes(uint64_t mask, char *buf, size_t len)
{
	size_t at = 0;

	snprintf(buf, len, "?");
	for (int k = 0; k < 64 && at < len; k++)
		if (mask >> k & 1)
			at += (size_t)snprintf(buf + at, len - at, "%s%d",
					       at ? "," : "", k);
}

/*
 * The process's cpuset against where it runs, resident memory or not: a
 * cpuset.mems with none of the nodes its CPUs are on makes every access
 * remote by configuration; one that leaves some of them out, the accesses
 * of the threads there. And CPUs pinned to some of the nodes that have
 * both CPUs and memory, with memory allowed on others of them ("pin
 * both", as the diagnosis guides say), lets its allocations spill there
 * once its own run short, unless a memory policy binds it (numactl
 * --membind: not in Mems_allowed_list, and not visible in /proc). A node
 * without memory is left out of the comparison (a thread there reaches
 * its memory remotely by the machine's design), and so is a node without
 * CPUs from the last case (memory tiers are meant to be reached so).
 */
static void cpuset_check(struct doctor *d, const char *what, const char *comm,
			 uint64_t runs, uint64_t mems)
{
	static const char fix[] = "give its cgroup a cpuset.mems with the "
	    "nodes of its cpuset.cpus (systemd: AllowedMemoryNodes= to match "
	    "AllowedCPUs=)";
	uint64_t with_mem = 0, both = 0, runs_mem, allowed;
	char r[256], m[256], x[256];

	for (int i = 0; i < d->nodes; i++) {
		const struct node *nd = &d->node[i];

		if (nd->id >= 64 || !nd->mem_ok || nd->total_kb == 0)
			continue;
		with_mem |= 1ULL << nd->id;
		if (nd->cpus_known && nd->has_cpus)
			both |= 1ULL << nd->id;
	}
	runs_mem = runs & with_mem;
	allowed = mems & with_mem;
	if (d->nodes < 2 || runs_mem == 0 || allowed == 0)
		return;
	format_nodes(runs, r, sizeof(r));
	format_nodes(allowed, m, sizeof(m));
	if ((allowed & runs_mem) == 0) {
		doctor_add(d, L_CRIT, what, fix, "%s may run on node(s) %s, but "
		    "its cpuset lets it take memory only from node(s) %s "
		    "(Mems_allowed_list): every access is remote", comm, r, m);
	} else if (runs_mem & ~allowed) {
		format_nodes(runs_mem & ~allowed, x, sizeof(x));
		doctor_add(d, L_WARN, what, fix, "%s may run on node(s) %s, but "
		    "its cpuset lets it take memory only from node(s) %s "
		    "(Mems_allowed_list): its threads on node(s) %s reach all of "
		    "it remotely", comm, r, m, x);
	} else if ((runs_mem & both) != both &&
		   (allowed & both & ~runs_mem)) {
		format_nodes(allowed & both & ~runs_mem, x, sizeof(x));
		doctor_add(d, L_INFO, what, "pin both: a cpuset.mems with the "
		    "nodes it runs on (systemd: AllowedMemoryNodes=), or a "
		    "memory policy (numactl --membind)", "%s may run only on "
		    "node(s) %s, but may take memory from node(s) %s too: unless "
		    "a memory policy binds it, once its own run short its "
		    "allocations spill there and are reached remotely", comm, r,
		    x);
	}
}

/* Where the process's memory is against where it may run. */
static void placement(struct doctor *d, int pid, const char *what,
		      const char *comm, bool under)
{
	char path[PATH_MAX], runs[256];
	uint64_t bytes[NS_STATS_MAX_NODES], nodes;
	double total = 0, top = 0, share;
	const struct node *tn;
	int top_node = -1, rc;

	nodes = run_nodes(d, pid);
	format_nodes(nodes, runs, sizeof(runs));
	cpuset_check(d, what, comm, nodes, mem_nodes(d, pid));
	snprintf(path, sizeof(path), "%s/proc/%d/numa_maps", d->root, pid);
	rc = stats_numa_maps(path, false, bytes);
	if (rc) {
		doctor_add(d, L_WARN, what, NULL, "%s: cannot read its numa_maps: "
		    "%s", comm, rc == -EACCES || rc == -EPERM ? "another user's "
		    "process (run as root)" : strerror(-rc));
		d->unreadable = true;
		return;
	}
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		total += (double)bytes[k];
		if ((double)bytes[k] > top) {
			top = (double)bytes[k];
			top_node = k;
		}
	}
	share = total > 0 ? 100.0 * top / total : 0;
	tn = top_node >= 0 ? node_by_id(d, top_node) : NULL;
	if (top_node < 0) {
		doctor_add(d, L_OK, what, NULL, "%s: nothing resident; may run on "
		    "node(s) %s", comm, runs);
	} else if (total < (double)FIRST_TOUCH_MIN || nodes == 0 ||
		   d->nodes < 2 || share < 90.0) {
		doctor_add(d, L_OK, what, NULL, "%s: %.1f MiB resident, the most, "
		    "%.0f %% on node %d; may run on node(s) %s", comm,
		    total / 1048576.0, share, top_node, runs);
	} else if (tn && tn->cpus_known && !tn->has_cpus) {
		doctor_add(d, L_INFO, what, NULL, "%s: %.0f %% of its %.1f MiB is "
		    "on node %d, which has no CPUs (memory-only): every access is "
		    "remote by the machine's design; fine for cold data",
		    comm, share, total / 1048576.0, top_node);
	} else if (!(nodes >> top_node & 1)) {
		doctor_add(d, L_CRIT, what, under ? "numashim stat PID; a pinning "
		    "that came after its memory did (taskset, cgroup cpuset) leaves "
		    "it behind: numactl --migrate, or restart it" : "bind it where "
		    "its memory is (numactl --cpunodebind=N --membind=N), or run it "
		    "under numashim", "%s: %.0f %% of its %.1f MiB is on node %d, "
		    "but it may only run on node(s) %s: every access is remote",
		    comm, share, total / 1048576.0, top_node, runs);
	} else if (__builtin_popcountll(nodes) > 1 && !under) {
		doctor_add(d, L_WARN, what, "run it under numashim (numashim run -- "
		    "CMD, or numashim dropin SERVICE --write), or interleave it "
		    "(numactl --interleave=all)", "%s: %.0f %% of its %.1f MiB is "
		    "on node %d while its threads may run on nodes %s: one thread "
		    "probably touched it all first (first-touch placement), and "
		    "the others reach it remotely", comm, share,
		    total / 1048576.0, top_node, runs);
	} else {
		doctor_add(d, L_OK, what, NULL, "%s: %.1f MiB resident, the most, "
		    "%.0f %% on node %d; may run on node(s) %s", comm,
		    total / 1048576.0, share, top_node, runs);
	}
}

void doctor_pid(struct doctor *d, int pid)
{
	char rel[64], comm[64], raw[64], what[48], policy[160], err[STATS_ERR_LEN];
	struct stats_snapshot *snap = malloc(sizeof(*snap));
	bool under = false;
	int rc = -ENOMEM;

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
	if (snap)
		rc = stats_read_pid(d->dir, pid, snap, err, sizeof(err));
	if (rc == 0 && snap->state == STATS_LIVE) {
		bool damaged;
		double r = seg_remote(&snap->seg, &damaged);

		under = true;
		tool_clean(snap->seg.h.policy, policy, sizeof(policy));
		if (!snap->seg.h.active)
			doctor_add(d, L_INFO, what, NULL, "%s runs under numashim, which "
			    "passes through (%s)", comm, policy);
		else if (damaged)
			doctor_add(d, L_INFO, what, NULL, "%s runs under numashim "
			    "(%s); %s", comm, policy, damaged_text);
		else if (r < 0)
			doctor_add(d, L_OK, what, NULL, "%s runs under numashim (%s); no "
			    "pages sampled yet", comm, policy);
		else
			doctor_add(d, doctor_level(r), what, doctor_level(r) > L_OK ?
			    "numashim stat PID shows the nodes" : NULL, "%s runs "
			    "under numashim (%s): " TOOL_PCT " %% of its sampled "
			    "pages on another node than meant: %s", comm, policy, r,
			    tool_level(r));
	} else if ((rc == 0 || rc == -ENOENT || rc == -EAGAIN) &&
		   stats_maps_have_shim(d->root, pid) == 1) {
		/* Its segment comes with its first refresh (shim/stats.c);
		 * rc 0 here is a stale one of an earlier process's. */
		under = true;
		doctor_add(d, L_INFO, what, NULL, "%s runs under numashim; no "
		    "statistics yet (its segment is made at its first refresh, "
		    "a second or more after it starts, once it allocates; none "
		    "with NUMASHIM_STATS=off)", comm);
	}
	free(snap);
	placement(d, pid, what, comm, under);
}
