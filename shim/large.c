/*
 * Large blocks: malloc-family allocations of at least
 * NUMASHIM_INTERLEAVE_MIN come from one arena of the plan's large set,
 * whose extents are interleaved (equally, or in the weights' proportion)
 * over the interleave nodes, so a big buffer every thread reads is spread
 * rather than piled on the node of the thread that happened to touch it.
 * That arena is jemalloc's "huge" arena, so jemalloc's malloc routes them
 * there itself (shim/arena.c, ns_arena_adopt_huge); calloc, realloc and
 * the aligned calls name it with MALLOCX_ARENA. If jemalloc's private
 * state is not as expected, the set gets an arena of its own at its first
 * large block and only those calls use it. Large blocks bypass the thread
 * cache (jemalloc caches nothing that big anyway) and carry the large
 * set's tag, so free() sends them straight home.
 */
#include "shim/shim.h"

#include "shim/log.h"

#include <errno.h>
#include <pthread.h>

struct ns_large ns_large = { .min = SIZE_MAX, .map_min = SIZE_MAX };
struct ns_counters ns_count;

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int arena_warned, huge_warned;
static size_t map_min = SIZE_MAX; /* ns_large.map_min once live */

/* The user's jemalloc options (MALLOC_CONF, /etc/malloc.conf) set
 * oversize_threshold: theirs is kept, and with it jemalloc's own huge arena
 * for blocks above it; numashim's large set then gets only calloc, realloc
 * and the aligned calls. */
static void say_threshold_taken(void)
{
	size_t v = 0, sz = sizeof(v);
	char num[24];

	nsje_mallctl("opt.oversize_threshold", &v, &sz, NULL, 0);
	policy_format_u64(v, num);
	ns_log_bad_input(NULL, "jemalloc option oversize_threshold", num,
			 "set by MALLOC_CONF or /etc/malloc.conf, it keeps "
			 "large malloc blocks from the interleaved set",
			 "local placement for them (calloc, realloc and "
			 "aligned allocations still interleave)");
}

/*
 * jemalloc's malloc serves a size its thread cache holds (up to
 * opt.tcache_max, 32 KiB by default) from the thread's own arena before
 * any huge-arena test: a threshold that low would interleave calloc's and
 * memalign's blocks of a size and not malloc's (found by a review). The
 * threshold is raised above the cache's limit, with a line.
 */
static void above_thread_cache(void)
{
	size_t max = 0, sz = sizeof(max);
	bool on = false;
	size_t bsz = sizeof(on);
	char given[24], used[24];

	if (nsje_mallctl("opt.tcache", &on, &bsz, NULL, 0) || !on ||
	    nsje_mallctl("opt.tcache_max", &max, &sz, NULL, 0) ||
	    ns.plan.large_min > max)
		return;
	policy_format_u64(ns.plan.large_min, given);
	policy_format_u64(max + 1, used);
	ns.plan.large_min = max + 1;
	ns_log_bad_input(NULL, "NUMASHIM_INTERLEAVE_MIN", given,
			 "not above jemalloc's thread cache limit "
			 "(opt.tcache_max), whose malloc blocks never reach "
			 "the interleaved set", used);
}

/*
 * jemalloc tests its threshold against the size asked of malloc and
 * calloc, but against the size class (the usable size) in its aligned
 * calls and in realloc's moves: with 64M, a 60M block (of the 64M class)
 * was interleaved by memalign, posix_memalign and realloc and not by
 * malloc, and realloc then moved it back and forth (found by a review).
 * Both tests agree one past a size class: the threshold is the first size
 * whose class reaches NUMASHIM_INTERLEAVE_MIN (64M: 56M + 1), and so is
 * numashim's own test. (README: a block is large by its size class.)
 */
static size_t class_threshold(size_t min)
{
	size_t lo = 1, hi = min;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, u = nsje_nallocx(mid, 0);

		if (u == 0 || u >= min)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int ns_large_init(void)
{
	unsigned huge;
	int rc;

	/* A plan left with one node (preferred:N, bind:N, NUMASHIM_NODES=N)
	 * has no large set: its large blocks already come from that node's
	 * set, and its large mappings are placed as that set's memory is
	 * (shim/mmap.c). They were left to first touch, off the node asked
	 * for (found by a review). */
	map_min = ns.plan.large_min ? ns.plan.large_min : SIZE_MAX;
	if (ns.plan.large_set < 0)
		return 0;
	/* min stays SIZE_MAX until ns_dispatch_checked: calloc, realloc and
	 * the aligned calls test it. */
	ns_large.tag = (uint8_t)(ns.plan.large_set + 1);
	rc = ns_arena_adopt_huge(ns.plan.large_set, &huge);
	if (rc == 0) {
		ns_large.flags = MALLOCX_ARENA(huge) | MALLOCX_TCACHE_NONE;
		ns_large.routed = true;
		above_thread_cache();
		/* A mapping has no size class: it is large from the threshold
		 * itself (as raised above the thread cache, said in that line),
		 * not from the class below it. With the class's, a 57 MiB mmap
		 * was interleaved under NUMASHIM_INTERLEAVE_MIN=64M (found by a
		 * review). */
		map_min = ns.plan.large_min;
	} else if (rc == -EPERM) {
		say_threshold_taken();
	} else {
		ns_log_once(&huge_warned, "jemalloc's huge arena", rc,
			    "large blocks from malloc stay on the allocating "
			    "thread's node");
	}
	/* By the class in every case: when malloc is not routed, calloc,
	 * realloc and the aligned calls still test it, and with the size
	 * itself a 60M calloc or memalign (a 64M block) stayed local under
	 * 64M, and realloc of a large 64M block to 60M moved it out and back
	 * (found by a review). */
	ns.plan.large_min = class_threshold(ns.plan.large_min);
	return 0;
}

/* Large mappings start being placed, and malloc's large blocks going to
 * the set (after the rest is live). */
void ns_large_route(void)
{
	__atomic_store_n(&ns_large.map_min, map_min, __ATOMIC_RELEASE);
	if (ns_large.routed)
		ns_arena_route_large(ns.plan.large_min);
}

/* Without the huge arena (see above), the set's arena is made at the first
 * large block of calloc, realloc or the aligned calls. The huge arena
 * itself is made at start: jemalloc would make it at the first large
 * malloc, with its default hooks. That costs a process start about 20 page
 * faults of arena metadata (startup child under 2 emulated nodes: 278 ->
 * 299). */
static void make_arena(void)
{
	unsigned arena;
	int slot;

	if (ns_arena_pick(ns.plan.large_set, true, &slot, &arena) == 0)
		__atomic_store_n(&ns_large.flags,
				 MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE,
				 __ATOMIC_RELEASE);
	else
		ns_log_once(&arena_warned, "arenas.create", -ENOMEM,
			    "large blocks stay on the allocating thread's node");
}

static int large_flags(void)
{
	int flags = __atomic_load_n(&ns_large.flags, __ATOMIC_ACQUIRE);

	if (NS_UNLIKELY(flags == 0)) {
		pthread_once(&arena_once, make_arena);
		flags = __atomic_load_n(&ns_large.flags, __ATOMIC_ACQUIRE);
	}
	return flags; /* 0: the thread's own arena and cache */
}

void *ns_large_alloc(size_t n, size_t align, bool zero)
{
	int flags = large_flags();
	void *p;

	if (zero)
		flags |= MALLOCX_ZERO;
	if (align > 1)
		flags |= MALLOCX_ALIGN(align);
	/* mallocx leaves errno alone on failure; malloc must set it. */
	p = nsje_mallocx(n, flags);
	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void *ns_large_realloc(void *p, size_t n)
{
	void *q = nsje_rallocx(p, n, ns_large.flags);

	if (q == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	return q;
}

void ns_large_free(void *p)
{
	nsje_dallocx(p, MALLOCX_TCACHE_NONE);
}
