/*
 * `numashim stat`'s table: one process's segment, numastat-style, with
 * the nodes as columns, and the rating of a remote share that the table,
 * doctor and the JSON share (tool_level).
 */
#include "tools/tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Rated as printed: every output shows a share with two decimals
 * (TOOL_PCT), and the value rated is the one shown, so that 4.9995 %,
 * shown "5.00", is not "normal" under a legend "<5 normal", nor 20.004 %,
 * shown "20.00", "critical" under ">20 critical". The edges as the legend
 * gives them: below 5 normal, 5 to below 10 monitor, 10 to 20
 * investigate, above 20 critical.
 */
const char *tool_level(double pct)
{
	char shown[64];

	snprintf(shown, sizeof(shown), TOOL_PCT, pct);
	pct = strtod(shown, NULL);
	if (pct < 5.0)
		return "normal";
	if (pct < 10.0)
		return "monitor";
	if (pct <= 20.0)
		return "investigate";
	return "critical";
}

/*
 * Columns are COLW wide and always at least one space apart: a cell of
 * COLW - 1 characters or more (a 20-digit counter of a damaged segment)
 * pushes the rest of its row right rather than running into its neighbour.
 */
#define COLW 16

/* The labels of the rows with a saturated sum, for the line below the
 * table (see tool_add_sat). */
struct saturated {
	char rows[512];
};

static void saturated_add(struct saturated *sat, const char *label)
{
	size_t len = strlen(sat->rows);

	snprintf(sat->rows + len, sizeof(sat->rows) - len, "%s%s",
		 len ? ", " : "", label);
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void cell(FILE *f, const char *text)
{
	fprintf(f, " %*s", COLW - 1, text);
}

static void cell_u(FILE *f, uint64_t v, bool in_mib)
{
	char buf[48];

	if (in_mib)
		snprintf(buf, sizeof(buf), "%.2f", mib(v));
	else
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	cell(f, buf);
}

static void row_u(FILE *f, const char *label, const struct ns_stats_segment *s,
		  uint64_t shown, size_t off, size_t band, bool in_mib,
		  struct saturated *sat)
{
	uint64_t total = 0;
	bool over = false;

	fprintf(f, "%-18s", label);
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		const struct ns_stats_node *nd = &s->node[k];
		const uint64_t *a = (const uint64_t *)((const char *)nd + off);
		uint64_t v = 0;

		if (!(shown >> k & 1))
			continue;
		if (band == NS_BANDS) { /* all bands */
			for (int b = 0; b < NS_BANDS; b++)
				over |= tool_add_sat(&v, a[b]);
		} else {
			v = a[band];
		}
		over |= tool_add_sat(&total, v);
		cell_u(f, v, in_mib);
	}
	cell_u(f, total, in_mib);
	fputc('\n', f);
	if (over)
		saturated_add(sat, label);
}

#define ROW(f, label, s, shown, field, in_mib, sat) \
	row_u(f, label, s, shown, offsetof(struct ns_stats_node, field), 0, \
	      in_mib, sat)

static void cell_pct(FILE *f, double pct)
{
	char buf[48];

	snprintf(buf, sizeof(buf), TOOL_PCT, pct);
	cell(f, buf);
}

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
			tool_add_sat(&ts, sp);
			tool_add_sat(&tf, fp);
			tool_add_sat(&tb, fb);
		} else {
			sp = ts, fp = tf, fb = tb;
		}
		if (sp == 0)
			cell(f, "-");
		else if (what == 0)
			cell_pct(f, 100.0 * (double)fp / (double)sp);
		else if (what == 1)
			cell_pct(f, 100.0 * (double)fb / (double)sp);
		else
			cell(f, tool_level(100.0 * (double)fb / (double)sp));
	}
	fputc('\n', f);
}

/* Resident memory numashim placed, per node (numa_maps; see the reader). */
static void row_resident(FILE *f, const struct stats_snapshot *snap,
			 uint64_t shown, struct saturated *sat)
{
	uint64_t total = 0;
	bool over = false;

	fprintf(f, "%-18s", "Resident (MiB)");
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		if (!(shown >> k & 1))
			continue;
		over |= tool_add_sat(&total, snap->resident[k]);
		if (snap->resident_ok)
			cell_u(f, snap->resident[k], true);
		else
			cell(f, "-");
	}
	if (snap->resident_ok)
		cell_u(f, total, true);
	else
		cell(f, "-");
	fputc('\n', f);
	if (over && snap->resident_ok)
		saturated_add(sat, "Resident (MiB)");
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
	struct saturated sat = { "" };
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
		cell(f, col);
		cols++;
	}
	cell(f, "Total");
	fputc('\n', f);
	rule(f, cols);
	row_u(f, "Live small (MiB)", s, shown, offsetof(struct ns_stats_node,
	      live_bytes), NS_BAND_SMALL, true, &sat);
	row_u(f, "Live large (MiB)", s, shown, offsetof(struct ns_stats_node,
	      live_bytes), NS_BAND_LARGE, true, &sat);
	row_u(f, "Live mmap (MiB)", s, shown, offsetof(struct ns_stats_node,
	      live_bytes), NS_BAND_MMAP, true, &sat);
	row_resident(f, snap, shown, &sat);
	row_u(f, "Live blocks", s, shown, offsetof(struct ns_stats_node,
	      live_count), NS_BANDS, false, &sat);
	/* jemalloc's counts of blocks its arenas handed out and took back
	 * (nmalloc, ndalloc): what a thread cache serves is in neither. */
	ROW(f, "Arena allocs", s, shown, allocs, false, &sat);
	ROW(f, "Arena frees", s, shown, frees, false, &sat);
	ROW(f, "Remote frees", s, shown, remote_frees, false, &sat);
	ROW(f, "Interleaved (MiB)", s, shown, interleaved_bytes, true, &sat);
	ROW(f, "Pages sampled", s, shown, sampled_pages, false, &sat);
	ROW(f, "Pages found", s, shown, found_pages, false, &sat);
	ROW(f, "Pages fallback", s, shown, fallbacks, false, &sat);
	ROW(f, "Threads", s, shown, threads, false, &sat);
	rule(f, cols);
	row_pct(f, "Local pages %", s, shown, 0);
	row_pct(f, "Remote pages %", s, shown, 1);
	row_pct(f, "Remote level", s, shown, 2);
	if (sat.rows[0])
		fprintf(f, "Saturated (these sums exceed 2^64-1 and show that "
			"maximum; the segment is damaged): %s\n", sat.rows);
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		if (shown >> k & 1) {
			tool_add_sat(&ts, s->node[k].sampled_pages);
			tool_add_sat(&tb, s->node[k].fallbacks);
		}
	}
	if (ts)
		fprintf(f, "Remote pages: " TOOL_PCT " %% of %llu sampled: %s "
			"(<5 normal, 5-10 monitor, 10-20 investigate, >20 "
			"critical)\n",
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
