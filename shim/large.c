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

#include "shim/log.h"

#include <errno.h>
#include <pthread.h>

struct ns_large ns_large = { .min = SIZE_MAX };
struct ns_counters ns_count;

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int arena_warned;

int ns_large_init(void)
{
	if (ns.plan.large_set < 0)
		return 0;
	/* min stays SIZE_MAX until ns_dispatch_checked: malloc tests it. */
	ns_large.tag = (uint8_t)(ns.plan.large_set + 1);
	return 0;
}

/* The set's arena is made at the first large block, not at start: most
 * processes never allocate one, and an arena costs each start a 2 MiB
 * mapping, an mbind and a dozen page faults of metadata. */
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

static void counted(void *p)
{
	size_t n = nsje_sallocx(p, 0);

	NS_COUNT(large_allocs, 1);
	NS_COUNT(large_bytes, n);
	NS_COUNT(large_live_bytes, n);
}

void *ns_large_alloc(size_t n, size_t align, bool zero)
{
	int flags = large_flags();
	bool in_set = flags != 0; /* not the thread-arena fallback */
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
	if (in_set)
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
