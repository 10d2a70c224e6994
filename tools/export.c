/*
 * `numashim stat --json` and `--prometheus`. Strings from a segment (exe,
 * comm, policy) are untrusted: they are made printable UTF-8 first, then
 * escaped for the format.
 *
 * Prometheus: node_exporter's textfile-collector format, one HELP/TYPE per
 * family, labels pid, comm and node. The remote-page share of the usual
 * NUMA guides is computed as
 *   rate(numashim_pages_fallback_total[5m]) / rate(numashim_pages_sampled_total[5m])
 * per node (by (node)), or summed over nodes for a whole process. Remote
 * frees are counted per call and arena allocs and frees per block the
 * arenas hand out and take back (a thread cache serves most calls without
 * either), so the two make no ratio: rate(numashim_remote_frees_total[5m])
 * is the remote-free rate.
 */
#include "tools/tool.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static int utf8_len(const unsigned char *s)
{
	int n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, surrogates, above U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/* The next character of s made printable: *n bytes of s (a valid UTF-8
 * sequence, or a printable ASCII byte) or, for a control byte or invalid
 * UTF-8, "?" standing for one byte of s; returns what to print. */
static const char *clean_char(const unsigned char *s, int *n, int *out_len)
{
	int len = utf8_len(s);

	if (len > 1) {
		*n = *out_len = len;
		return (const char *)s;
	}
	*n = *out_len = 1;
	return len == 1 && *s >= 0x20 && *s != 0x7f ? (const char *)s : "?";
}

void tool_clean(const char *in, char *out, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	if (len == 0)
		return;
	while (*s) {
		int n, w;
		const char *c = clean_char(s, &n, &w);

		if (o + (size_t)w >= len) {
			if (o + 1 >= len)
				break;
			c = "?", w = 1, n = 1; /* a sequence cut by the end */
		}
		memcpy(out + o, c, (size_t)w);
		o += (size_t)w;
		s += n;
	}
	out[o] = '\0';
}

bool tool_utf8_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; ) {
		int n = utf8_len(p);

		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

/* Cleaned as tool_clean, escaped while written: no length limit (a
 * segment's path may be as long as PATH_MAX). */
void tool_json_str(FILE *f, const char *raw)
{
	const unsigned char *s = (const unsigned char *)raw;

	fputc('"', f);
	while (*s) {
		int n, w;
		const char *c = clean_char(s, &n, &w);

		if (w == 1 && (*c == '\\' || *c == '"'))
			fputc('\\', f);
		fwrite(c, 1, (size_t)w, f);
		s += n;
	}
	fputc('"', f);
}

/* ------------------------------------------------------------ JSON */

static const char *const band_name[NS_BANDS] = { "small", "large", "mmap" };
static const char *const left_name[NS_STATS_LEFT_REASONS] = {
	"file", "fixed", "hugetlb", "stack", "small", "program_policy",
	"jvm_numa", "off"
};

static void json_u(FILE *f, const char *key, uint64_t v, bool comma)
{
	fprintf(f, "\"%s\": %llu%s", key, (unsigned long long)v, comma ? ", " : "");
}

/* `saturated` (the total only): the JSON array's items, see json_total. */
static void json_node(FILE *f, const struct ns_stats_node *nd, int node,
		      const char *indent, const uint64_t *resident,
		      const char *saturated)
{
	fprintf(f, "%s{", indent);
	if (node >= 0)
		fprintf(f, "\"node\": %d, ", node);
	if (resident)
		json_u(f, "resident_bytes", *resident, true);
	else
		fputs("\"resident_bytes\": null, ", f);
	fputs("\"live_bytes\": {", f);
	for (int b = 0; b < NS_BANDS; b++)
		json_u(f, band_name[b], nd->live_bytes[b], b + 1 < NS_BANDS);
	fputs("}, \"live_count\": {", f);
	for (int b = 0; b < NS_BANDS; b++)
		json_u(f, band_name[b], nd->live_count[b], b + 1 < NS_BANDS);
	fputs("}, ", f);
	json_u(f, "allocs", nd->allocs, true);
	json_u(f, "frees", nd->frees, true);
	json_u(f, "remote_frees", nd->remote_frees, true);
	json_u(f, "interleaved_bytes", nd->interleaved_bytes, true);
	json_u(f, "sampled_pages", nd->sampled_pages, true);
	json_u(f, "found_pages", nd->found_pages, true);
	json_u(f, "fallback_pages", nd->fallbacks, true);
	json_u(f, "threads", nd->threads, true);
	if (saturated)
		fprintf(f, "\"saturated\": [%s], ", saturated);
	if (nd->sampled_pages) {
		double loc = 100.0 * (double)nd->found_pages / (double)nd->sampled_pages;
		double rem = 100.0 * (double)nd->fallbacks / (double)nd->sampled_pages;

		fprintf(f, "\"local_pct\": %.2f, \"remote_pct\": " TOOL_PCT
			", \"remote_level\": \"%s\"}", loc, rem, tool_level(rem));
	} else {
		fputs("\"local_pct\": null, \"remote_pct\": null, "
		      "\"remote_level\": null}", f);
	}
}

#define N(field) offsetof(struct ns_stats_node, field)

/* The counters summed into "total", by their JSON names. */
static const struct {
	const char *name;
	size_t off;
} summed[] = {
	{ "live_bytes.small", N(live_bytes[NS_BAND_SMALL]) },
	{ "live_bytes.large", N(live_bytes[NS_BAND_LARGE]) },
	{ "live_bytes.mmap", N(live_bytes[NS_BAND_MMAP]) },
	{ "live_count.small", N(live_count[NS_BAND_SMALL]) },
	{ "live_count.large", N(live_count[NS_BAND_LARGE]) },
	{ "live_count.mmap", N(live_count[NS_BAND_MMAP]) },
	{ "allocs", N(allocs) },
	{ "frees", N(frees) },
	{ "remote_frees", N(remote_frees) },
	{ "interleaved_bytes", N(interleaved_bytes) },
	{ "sampled_pages", N(sampled_pages) },
	{ "found_pages", N(found_pages) },
	{ "fallback_pages", N(fallbacks) },
	{ "threads", N(threads) },
};

/*
 * "total": the shown nodes' counters summed, each saturating at
 * UINT64_MAX (tool_add_sat), and "saturated": the names of the sums that
 * did ("live_bytes.small", "allocs", ...; "resident_bytes"), empty for a
 * sound segment.
 */
static void json_total(FILE *f, const struct stats_snapshot *snap,
		       uint64_t shown)
{
	struct ns_stats_node total;
	uint64_t resident = 0;
	char sat[512] = "";
	size_t len = 0;

	memset(&total, 0, sizeof(total));
	for (size_t i = 0; i < sizeof(summed) / sizeof(summed[0]); i++) {
		uint64_t *acc = (uint64_t *)((char *)&total + summed[i].off);
		bool over = false;

		for (int k = 0; k < NS_STATS_MAX_NODES; k++)
			if (shown >> k & 1)
				over |= tool_add_sat(acc, *(const uint64_t *)(
					(const char *)&snap->seg.node[k] +
					summed[i].off));
		if (over && len < sizeof(sat))
			len += (size_t)snprintf(sat + len, sizeof(sat) - len,
						"%s\"%s\"", len ? ", " : "",
						summed[i].name);
	}
	if (snap->resident_ok) {
		bool over = false;

		for (int k = 0; k < NS_STATS_MAX_NODES; k++)
			if (shown >> k & 1)
				over |= tool_add_sat(&resident, snap->resident[k]);
		if (over && len < sizeof(sat))
			snprintf(sat + len, sizeof(sat) - len, "%s\"resident_bytes\"",
				 len ? ", " : "");
	}
	json_node(f, &total, -1, "    ", snap->resident_ok ? &resident : NULL,
		  sat);
}

static void json_one(FILE *f, const struct stats_snapshot *snap)
{
	const struct ns_stats_segment *s = &snap->seg;
	const struct ns_stats_header *h = &s->h;
	uint64_t shown = stats_nodes_shown(s);
	bool first = true;

	fprintf(f, "  {\"pid\": %d, ", h->pid);
	json_u(f, "start_time", h->start_time, true);
	fputs("\"comm\": ", f);
	tool_json_str(f, h->comm);
	fputs(", \"exe\": ", f);
	tool_json_str(f, h->exe);
	fputs(", \"policy\": ", f);
	tool_json_str(f, h->policy);
	fprintf(f, ", \"state\": \"%s\", \"stale\": %s, \"segment\": ",
		snap->state == STATS_LIVE ? "live" : snap->state == STATS_DEAD ?
		"dead" : snap->state == STATS_EXECED ? "execed" : "reused",
		snap->state == STATS_LIVE ? "false" : "true");
	tool_json_str(f, snap->path);
	fprintf(f, ", \"active\": %s, ", h->active ? "true" : "false");
	json_u(f, "fake_nodes", h->fake_nodes, true);
	json_u(f, "node_count", h->node_count, true);
	json_u(f, "updated_ns", h->updated_ns, true);
	json_u(f, "updates", h->updates, true);
	fputs("\n   \"mmap\": {", f);
	json_u(f, "placed", h->mmap_placed, true);
	json_u(f, "placed_bytes", h->mmap_placed_bytes, true);
	fputs("\"left\": {", f);
	for (int i = 0; i < NS_STATS_LEFT_REASONS; i++)
		json_u(f, left_name[i], h->mmap_left[i], i + 1 < NS_STATS_LEFT_REASONS);
	fputs("}}, \"shm\": {", f);
	json_u(f, "placed", h->shm_placed, true);
	json_u(f, "placed_bytes", h->shm_placed_bytes, true);
	json_u(f, "attached", h->shm_attached, false);
	fputs("}, ", f);
	json_u(f, "program_mbind", h->program_mbind, true);
	json_u(f, "program_set_mempolicy", h->program_set_mempolicy, true);
	fputs("\n   \"nodes\": [", f);
	for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
		const struct ns_stats_node *nd = &s->node[k];

		if (!(shown >> k & 1))
			continue;
		fputs(first ? "\n" : ",\n", f);
		first = false;
		json_node(f, nd, k, "    ",
			  snap->resident_ok ? &snap->resident[k] : NULL, NULL);
	}
	fputs("],\n   \"total\":\n", f);
	json_total(f, snap, shown);
	fputs("}", f);
}

void tool_print_json(FILE *f, const struct stats_snapshot *v, size_t n)
{
	fputs("[", f);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n" : "\n", f);
		json_one(f, &v[i]);
	}
	fputs(n ? "\n]\n" : "]\n", f);
}

/* ------------------------------------------------------------ Prometheus */

enum scope { PROC, NODE, BAND, LEFT };

struct family {
	const char *name, *type, *help;
	enum scope scope;
	size_t off;         /* in the node (NODE, BAND) or header (PROC) */
};

#define H(field) offsetof(struct ns_stats_header, field)

static const struct family families[] = {
	{ "numashim_live_bytes", "gauge", "Live heap bytes numashim placed on "
	  "the node, by size band (small, large, mmap).", BAND, N(live_bytes) },
	{ "numashim_live_blocks", "gauge", "Live blocks on the node, by size "
	  "band.", BAND, N(live_count) },
	{ "numashim_allocs_total", "counter", "Blocks the node's arenas handed "
	  "out (jemalloc's nmalloc: to thread caches in batches, and to calls "
	  "that bypass them); calls a thread cache serves are not counted.",
	  NODE, N(allocs) },
	{ "numashim_frees_total", "counter", "Blocks that went back to the "
	  "node's arenas (jemalloc's ndalloc: from thread caches in batches, and "
	  "from frees that bypass them); not a count of free calls.",
	  NODE, N(frees) },
	{ "numashim_remote_frees_total", "counter", "Frees of blocks of the "
	  "node by a thread of another node, one per call (such a block never "
	  "enters the freeing thread's cache).", NODE, N(remote_frees) },
	{ "numashim_interleaved_bytes", "gauge", "Live bytes of interleaved "
	  "large blocks and mappings on the node.", NODE, N(interleaved_bytes) },
	{ "numashim_pages_sampled_total", "counter", "Pages meant for the node "
	  "that were sampled with move_pages.", NODE, N(sampled_pages) },
	{ "numashim_pages_found_total", "counter", "Sampled pages found on the "
	  "node they were meant for (local).", NODE, N(found_pages) },
	{ "numashim_pages_fallback_total", "counter", "Sampled pages found on "
	  "another node; remote-page ratio: rate(numashim_pages_fallback_total[5m])"
	  " / rate(numashim_pages_sampled_total[5m]) (<0.05 normal, 0.05-0.10 "
	  "monitor, 0.10-0.20 investigate, >0.20 critical).", NODE, N(fallbacks) },
	{ "numashim_threads", "gauge", "Threads bound to the node now.", NODE,
	  N(threads) },
	{ "numashim_active", "gauge", "1: per-node arenas; 0: passing straight "
	  "through to jemalloc.", PROC, H(active) },
	{ "numashim_last_update_timestamp_seconds", "gauge", "When the process "
	  "last updated its stats (Unix time); no sample before its first "
	  "update.", PROC, H(updated_ns) },
	{ "numashim_updates_total", "counter", "Stats updates written by the "
	  "process.", PROC, H(updates) },
	{ "numashim_mmap_placed_total", "counter", "Anonymous mappings numashim "
	  "placed.", PROC, H(mmap_placed) },
	{ "numashim_mmap_placed_bytes_total", "counter", "Bytes of anonymous "
	  "mappings numashim placed.", PROC, H(mmap_placed_bytes) },
	{ "numashim_mmap_left_total", "counter", "Mappings left to the kernel, "
	  "by reason.", LEFT, H(mmap_left) },
	{ "numashim_shm_placed_total", "counter", "System V shm segments "
	  "numashim placed.", PROC, H(shm_placed) },
	{ "numashim_shm_placed_bytes_total", "counter", "Bytes of System V shm "
	  "segments numashim placed.", PROC, H(shm_placed_bytes) },
	{ "numashim_shm_attached_total", "counter", "Attaches of System V shm "
	  "segments that were attached already (left as they are).",
	  PROC, H(shm_attached) },
	{ "numashim_program_mbind_total", "counter", "mbind calls of the "
	  "program itself (its policy wins on those ranges).", PROC,
	  H(program_mbind) },
	{ "numashim_program_set_mempolicy_total", "counter", "set_mempolicy "
	  "calls of the program itself.", PROC, H(program_set_mempolicy) },
};

/* A label value: cleaned, with \ and " escaped (no newline survives). */
static void put_label(FILE *f, const char *name, const char *raw, bool comma)
{
	fprintf(f, "%s%s=", comma ? "," : "", name);
	tool_json_str(f, raw);
}

static uint64_t header_value(const struct ns_stats_header *h, const struct family *fam)
{
	if (fam->off == H(active))
		return h->active;
	if (fam->off == H(updated_ns))
		return h->updated_ns;
	return *(const uint64_t *)((const char *)h + fam->off);
}

static void prom_family(FILE *f, const struct family *fam,
			const struct stats_snapshot *v, size_t n)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help,
		fam->name, fam->type);
	for (size_t i = 0; i < n; i++) {
		const struct ns_stats_segment *s = &v[i].seg;
		uint64_t shown = stats_nodes_shown(s);
		int per = fam->scope == BAND ? NS_BANDS :
			  fam->scope == LEFT ? NS_STATS_LEFT_REASONS : 1;

		for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
			bool node = fam->scope == NODE || fam->scope == BAND;

			if (node ? !(shown >> k & 1) : k > 0)
				continue;
			for (int j = 0; j < per; j++) {
				const char *base = node ? (const char *)&s->node[k]
						      : (const char *)&s->h;
				uint64_t val = fam->scope == PROC ?
					header_value(&s->h, fam) :
					((const uint64_t *)(base + fam->off))[j];

				/* Never updated: no time to give (not 1970). */
				if (fam->off == H(updated_ns) && fam->scope == PROC &&
				    val == 0)
					continue;
				fprintf(f, "%s{pid=\"%d\"", fam->name, s->h.pid);
				put_label(f, "comm", s->h.comm, true);
				if (node)
					fprintf(f, ",node=\"%d\"", k);
				if (fam->scope == BAND)
					fprintf(f, ",band=\"%s\"", band_name[j]);
				if (fam->scope == LEFT)
					fprintf(f, ",reason=\"%s\"", left_name[j]);
				if (fam->off == H(updated_ns) && fam->scope == PROC)
					fprintf(f, "} %.3f\n", (double)val / 1e9);
				else
					fprintf(f, "} %llu\n", (unsigned long long)val);
			}
		}
	}
}

/* Not in the segment: read by us from the process's numa_maps. */
static void prom_resident(FILE *f, const struct stats_snapshot *v, size_t n)
{
	fputs("# HELP numashim_resident_bytes Resident bytes on the node of the "
	      "memory numashim placed (heap extents and mappings), from "
	      "numa_maps.\n# TYPE numashim_resident_bytes gauge\n", f);
	for (size_t i = 0; i < n; i++) {
		uint64_t shown = stats_nodes_shown(&v[i].seg);

		if (!v[i].resident_ok)
			continue;
		for (int k = 0; k < NS_STATS_MAX_NODES; k++) {
			if (!(shown >> k & 1))
				continue;
			fprintf(f, "numashim_resident_bytes{pid=\"%d\"", v[i].seg.h.pid);
			put_label(f, "comm", v[i].seg.h.comm, true);
			fprintf(f, ",node=\"%d\"} %llu\n", k,
				(unsigned long long)v[i].resident[k]);
		}
	}
}

void tool_print_prometheus(FILE *f, const struct stats_snapshot *v, size_t n)
{
	/* A stale segment is a process that is gone: no series for it (and a
	 * pid may have a live segment too, which would duplicate labels). */
	struct stats_snapshot *live = NULL;
	size_t m = 0;

	fputs("# HELP numashim_info Processes running under numashim; labels "
	      "give the executable and the policy.\n# TYPE numashim_info gauge\n", f);
	for (size_t i = 0; i < n; i++) {
		if (v[i].state != STATS_LIVE)
			continue;
		fprintf(f, "numashim_info{pid=\"%d\"", v[i].seg.h.pid);
		put_label(f, "comm", v[i].seg.h.comm, true);
		put_label(f, "exe", v[i].seg.h.exe, true);
		put_label(f, "policy", v[i].seg.h.policy, true);
		fputs("} 1\n", f);
		m++;
	}
	if (m != n) {
		live = malloc(m ? m * sizeof(*live) : 1);
		if (live == NULL)
			return;
		m = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].state == STATS_LIVE)
				live[m++] = v[i];
		v = live;
		n = m;
	}
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		prom_family(f, &families[i], v, n);
	prom_resident(f, v, n);
	free(live);
}
