/*
 * Large blocks: malloc-family allocations of at least
 * NUMASHIM_INTERLEAVE_MIN come from one arena of the plan's large set,
 * whose extents are interleaved (equally, or in the weights' proportion)
 * over the interleave nodes, so a big buffer every thread reads is spread
 * rather than piled on the node of the thread that happened to touch it.
 * They bypass the thread cache (jemalloc caches nothing that big anyway)
 * and carry the large set's tag, so free() sends them straight home.
 */
#include "shim/shim.h"

#include <errno.h>

struct ns_large ns_large = { .min = SIZE_MAX };
struct ns_counters ns_count;

int ns_large_init(void)
{
	unsigned arena;
	int slot;

	if (ns.plan.large_set < 0)
		return 0;
	if (ns_arena_pick(ns.plan.large_set, true, &slot, &arena))
		return -ENOMEM;
	ns_large.flags = MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE;
	ns_large.min = ns.plan.large_min;
	ns_large.tag = (uint8_t)(ns.plan.large_set + 1);
	return 0;
}

static void counted(void *p)
{
	size_t n = nsje_sallocx(p, 0);

	NS_COUNT(large_allocs, 1);
	NS_COUNT(large_bytes, n);
	NS_COUNT(large_live_bytes, n);
}

void *ns_large_alloc(size_t n, size_t align, bool zero)
{
	int flags = ns_large.flags;
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
	counted(p);
	return p;
}

void *ns_large_realloc(void *p, size_t n)
{
	size_t old = nsje_sallocx(p, 0);
	void *q = nsje_rallocx(p, n, ns_large.flags);

	if (q == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	__atomic_fetch_sub(&ns_count.large_live_bytes, old, __ATOMIC_RELAXED);
	NS_COUNT(large_live_bytes, nsje_sallocx(q, 0));
	return q;
}

void ns_large_free(void *p)
{
	__atomic_fetch_sub(&ns_count.large_live_bytes, nsje_sallocx(p, 0),
			   __ATOMIC_RELAXED);
	nsje_dallocx(p, MALLOCX_TCACHE_NONE);
}
