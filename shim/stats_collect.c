/*
 * The stats segment's figures (shim/stats.c writes them): per node, from
 * jemalloc's per-arena statistics after an "epoch" merge, numashim's own
 * counts (remote frees, placed mappings), and a page sampler that asks the
 * kernel (move_pages) where pages meant for a node really sit.
 */
#include "shim/shim.h"
#include "shim/os.h"
#include "stats/layout.h"

#include <stddef.h>
#include <string.h>
#include <unistd.h>

#define SAMPLE_PAGES 16            /* per node set and refresh */
#define MAX_ARENAS_PER_SET 64

enum { ST_SMALL_ALLOC, ST_SMALL_NMALLOC, ST_SMALL_NDALLOC,
       ST_LARGE_ALLOC, ST_LARGE_NMALLOC, ST_LARGE_NDALLOC, ST_NR };

static const char *const st_names[ST_NR] = {
	"stats.arenas.0.small.allocated", "stats.arenas.0.small.nmalloc",
	"stats.arenas.0.small.ndalloc", "stats.arenas.0.large.allocated",
	"stats.arenas.0.large.nmalloc", "stats.arenas.0.large.ndalloc",
};

/* Used by the one refresher at a time (stats.c's lock). */
static struct {
	int ready;                  /* 0 not looked up, 1 ready, -1 failed */
	size_t mib[ST_NR][5], miblen[ST_NR];
	uint64_t rng;
	uint64_t sampled[POLICY_MAX_NODES], found[POLICY_MAX_NODES],
		 fallback[POLICY_MAX_NODES];
} S;

void ns_stats_collect_init(void)
{
	S.rng = (uint64_t)getpid();
}

/* At the first refresh, not at the start: looking the names up starts
 * jemalloc's ctl module, which a process passing through would otherwise
 * pay for at its start, figures read or not (shim/je.c). */
static bool lookup(void)
{
	int ready = 1;

	if (S.ready != 0)
		return S.ready > 0;
	ns_je_ctl_start();
	for (int k = 0; k < ST_NR && ready > 0; k++) {
		S.miblen[k] = 5;
		if (nsje_mallctlnametomib(st_names[k], S.mib[k], &S.miblen[k]))
			ready = -1;
	}
	/* Last: a child forked meanwhile looks them up again. */
	S.ready = ready;
	return ready > 0;
}

/* The forked child samples afresh: the parent's counts are the parent's. */
void ns_stats_collect_forked(void)
{
	S.rng = (uint64_t)getpid();
	memset(S.sampled, 0, sizeof(S.sampled));
	memset(S.found, 0, sizeof(S.found));
	memset(S.fallback, 0, sizeof(S.fallback));
}

static uint64_t arena_stat(int which, unsigned arena)
{
	uint64_t v = 0;
	size_t mib[5], len = sizeof(v);

	memcpy(mib, S.mib[which], sizeof(mib));
	mib[2] = arena;
	/* allocated is a size_t, the counters uint64_t: both 8 bytes here. */
	if (nsje_mallctlbymib(mib, S.miblen[which], &v, &len, NULL, 0))
		return 0;
	return v;
}

/* The share of node n in a set's bytes: the weights the plan took, for
 * the large set only (NUMASHIM_INTERLEAVE_WEIGHTS is about large blocks);
 * equal otherwise, as the kernel interleaves. */
static uint64_t share(int set, int n)
{
	if (set == ns.plan.large_set && ns.plan.vweighted && ns.cfg.weight[n])
		return ns.cfg.weight[n];
	return 1;
}

/* Adds `v` to field `off` of the nodes a set places on, split by weight
 * (an interleaved set's bytes are spread over its nodes). */
static void spread(struct ns_stats_node *nodes, int set, size_t off, uint64_t v)
{
	const struct policy_set *s = &ns.plan.set[set];
	uint64_t total = 0;
	int last = -1;
	uint64_t given = 0;

	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (s->vmask & policy_node_bit(n))
			total += share(set, n);
	if (total == 0)
		return;
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		uint64_t w, part;

		if (!(s->vmask & policy_node_bit(n)))
			continue;
		w = share(set, n);
		part = v / total * w + v % total * w / total;
		*(uint64_t *)((char *)&nodes[n] + off) += part;
		given += part;
		last = n;
	}
	if (last >= 0) /* rounding leftovers go to the last node */
		*(uint64_t *)((char *)&nodes[last] + off) += v - given;
}

#define SPREAD(nodes, set, field, v) \
	spread(nodes, set, offsetof(struct ns_stats_node, field), v)

/* Where do pages meant for a node set's node really sit? */
static void sample(int set)
{
	const struct policy_set *s = &ns.plan.set[set];
	void *pages[SAMPLE_PAGES];
	int status[SAMPLE_PAGES], n = 0;

	if (s->node < 0)
		return;
	for (unsigned k = 0; k < NS_RECENT && n < SAMPLE_PAGES; k++) {
		uintptr_t addr;
		size_t size;

		if (!ns_arena_recent(set, k, &addr, &size))
			continue;
		S.rng = S.rng * 6364136223846793005ULL + 1442695040888963407ULL;
		pages[n++] = (void *)((addr + (S.rng >> 17) % size) & ~(uintptr_t)4095);
	}
	if (n == 0 || os_move_pages_query((unsigned long)n, pages, status))
		return;
	for (int i = 0; i < n; i++) {
		if (status[i] < 0)
			continue; /* not touched yet: nothing to say */
		S.sampled[s->node]++;
		if (s->mask & policy_node_bit(status[i]))
			S.found[s->node]++;
		else
			S.fallback[s->node]++;
	}
}

void ns_stats_collect(struct ns_stats_node *nodes)
{
	uint64_t one = 1, mbytes[POLICY_MAX_SETS] = { 0 },
		 mcount[POLICY_MAX_SETS] = { 0 };
	size_t len = sizeof(one);

	if (!lookup())
		return; /* a jemalloc without statistics (no callback either) */
	/* Fold the thread caches' counts into the arenas' statistics. */
	nsje_mallctl("epoch", NULL, NULL, &one, len);
	if (!ns.active) {
		unsigned all = MALLCTL_ARENAS_ALL;
		struct ns_stats_node *n0 = &nodes[0];

		n0->live_bytes[NS_BAND_SMALL] = arena_stat(ST_SMALL_ALLOC, all);
		n0->live_bytes[NS_BAND_LARGE] = arena_stat(ST_LARGE_ALLOC, all);
		n0->allocs = arena_stat(ST_SMALL_NMALLOC, all) +
			     arena_stat(ST_LARGE_NMALLOC, all);
		n0->frees = arena_stat(ST_SMALL_NDALLOC, all) +
			    arena_stat(ST_LARGE_NDALLOC, all);
		n0->live_count[NS_BAND_SMALL] = arena_stat(ST_SMALL_NMALLOC, all) -
						arena_stat(ST_SMALL_NDALLOC, all);
		n0->live_count[NS_BAND_LARGE] = arena_stat(ST_LARGE_NMALLOC, all) -
						arena_stat(ST_LARGE_NDALLOC, all);
		return;
	}
	ns_mmap_live(mbytes, mcount);
	for (int s = 0; s < ns.plan.nr_sets; s++) {
		unsigned arenas[MAX_ARENAS_PER_SET];
		int threads, na = ns_arena_list(s, arenas, MAX_ARENAS_PER_SET,
						&threads);
		uint64_t v[ST_NR] = { 0 };

		for (int a = 0; a < na; a++)
			for (int k = 0; k < ST_NR; k++)
				v[k] += arena_stat(k, arenas[a]);
		SPREAD(nodes, s, live_bytes[NS_BAND_SMALL], v[ST_SMALL_ALLOC]);
		SPREAD(nodes, s, live_bytes[NS_BAND_LARGE], v[ST_LARGE_ALLOC]);
		SPREAD(nodes, s, live_count[NS_BAND_SMALL],
		       v[ST_SMALL_NMALLOC] - v[ST_SMALL_NDALLOC]);
		SPREAD(nodes, s, live_count[NS_BAND_LARGE],
		       v[ST_LARGE_NMALLOC] - v[ST_LARGE_NDALLOC]);
		SPREAD(nodes, s, allocs, v[ST_SMALL_NMALLOC] + v[ST_LARGE_NMALLOC]);
		SPREAD(nodes, s, frees, v[ST_SMALL_NDALLOC] + v[ST_LARGE_NDALLOC]);
		SPREAD(nodes, s, live_bytes[NS_BAND_MMAP], mbytes[s]);
		SPREAD(nodes, s, live_count[NS_BAND_MMAP], mcount[s]);
		/* The large set is interleaved, in runs when weighted, unless
		 * it is one node's (NUMASHIM_INTERLEAVE_NODES=N). */
		if (ns.plan.set[s].mpol == POLICY_MPOL_INTERLEAVE)
			SPREAD(nodes, s, interleaved_bytes,
			       v[ST_LARGE_ALLOC] + v[ST_SMALL_ALLOC] + mbytes[s]);
		SPREAD(nodes, s, remote_frees,
		       __atomic_load_n(&ns_count.remote_frees_set[s],
				       __ATOMIC_RELAXED));
		SPREAD(nodes, s, threads, (uint64_t)threads);
		sample(s);
	}
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		nodes[n].sampled_pages = S.sampled[n];
		nodes[n].found_pages = S.found[n];
		nodes[n].fallbacks = S.fallback[n];
	}
}
