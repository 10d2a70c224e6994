/*
 * `numashim stat`'s table: one process's segment, numastat-style, with
 * the nodes as columns, and the rating of a remote share that the table,
 * doctor and the JSON share (tool_level).
 */
#include "tools/tool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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

void tool_print_table(FILE *f, const struct stats_snapshot *snap)
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
