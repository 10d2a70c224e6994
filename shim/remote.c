/*
 * Remote frees: a block of another node's arenas that this thread frees
 * goes back to its home arena, never into this thread's own cache, where
 * its next malloc would hand it out again on the wrong node (origin-aware
 * free; free in shim/malloc.c finds such blocks by their tag). They go
 * through an explicit jemalloc tcache of the thread's, made at its first
 * remote free, and are counted for the stats segment in batches.
 */
#include "shim/shim.h"

#include <pthread.h>

#define REMOTE_COUNT_BATCH 64 /* see ns_remote_flush_count */

static struct {
	pthread_key_t key;      /* destroys the remote tcache of a thread */
	bool key_ok;
} R;

static int remote_flags(void);
static void count_remote(uint8_t home);

void ns_remote_init(void)
{
	R.key_ok = pthread_key_create(&R.key, ns_remote_release) == 0;
}

/* A remote free off its common path: the thread's first (its explicit
 * tcache is made here), a change of home, a full count batch, a thread
 * with no tcache for them. */
static NS_NOINLINE void free_remote(void *p, uint8_t home)
{
	/* Back to its home arena, never through this thread's own cache: a
	 * block of another node must not be handed out again on this one. */
	count_remote(home);
	nsje_dallocx(p, remote_flags());
}

/* A thread with no node tag: not bound yet (not made through our
 * pthread_create), bound now, and the block may be its own; or one with a
 * memory policy of its own (ns_thread_own_policy), whose frees all go home. */
static NS_NOINLINE void free_unbound(void *p, uint8_t home)
{
	if (ns_thread_ensure_bound() && home == ns_self.tag) {
		nsje_free(p);
		return;
	}
	free_remote(p, home);
}

/* home: the block's tag, never 0 or this thread's (free read it). The
 * common case, a block of the same home as the last remote free with the
 * count batch not full, takes no stack frame: 18 instructions
 * before jemalloc's dallocx, about 35 when it was one function (bench/service
 * under 2 emulated nodes frees a third of its blocks remotely). */
void ns_free_foreign(void *p, uint8_t home)
{
	if (NS_UNLIKELY(home == ns_large.tag)) {
		ns_large_free(p);
		return;
	}
	if (NS_UNLIKELY(ns_self.tag == 0)) {
		free_unbound(p, home);
		return;
	}
	/* count_remote and remote_flags when nothing is due. It relies on
	 * remote_tc being 0 whenever remote_failed is set (remote_flags,
	 * remote_release); for an instant in remote_flags it is not, and a
	 * free from a signal handler then is batched instead of counted at
	 * once: nothing is lost. */
	if (NS_LIKELY(ns_self.counted_set == home && ns_self.remote_tc != 0 &&
		      ns_self.counted < REMOTE_COUNT_BATCH - 1)) {
		ns_self.counted++;
		nsje_dallocx(p, MALLOCX_TCACHE(ns_self.remote_tc - 1));
		return;
	}
	free_remote(p, home);
}

/* Remote frees are counted per thread and added to the shared counter in
 * batches (REMOTE_COUNT_BATCH, a change of home, the activity callback,
 * the thread's end): one atomic add per free would have every thread that
 * frees remotely fight over that counter's cache line. */
void ns_remote_flush_count(void)
{
	if (ns_self.counted)
		NS_COUNT(remote_frees_set[ns_self.counted_set - 1], ns_self.counted);
	ns_self.counted = 0;
}

static void count_remote(uint8_t home)
{
	if (ns_self.remote_failed) { /* ending, or no tcache: no batching */
		NS_COUNT(remote_frees_set[home - 1], 1);
		return;
	}
	if (ns_self.counted_set != home) {
		ns_remote_flush_count();
		ns_self.counted_set = home;
	}
	if (++ns_self.counted >= REMOTE_COUNT_BATCH)
		ns_remote_flush_count();
}

void ns_remote_release(void *unused)
{
	unsigned id;

	ns_remote_flush_count();
	/* A dying thread makes no new tcache, and counts what its TLS
	 * destructors free one by one. remote_tc goes to 0 with it:
	 * ns_free_foreign's fast path tests only remote_tc. */
	ns_self.remote_failed = 1;
	if (ns_self.remote_tc == 0)
		return;
	id = (unsigned)(ns_self.remote_tc - 1);
	ns_self.remote_tc = 0;
	nsje_mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id));
}

/*
 * Remote frees go through an explicit jemalloc tcache of the thread's that
 * nothing ever allocates from: blocks wait there and go home in batches, a
 * bin lock per batch, where MALLOCX_TCACHE_NONE took the home bin's lock
 * for every block and ticked its decay each time (the "service" benchmark
 * made ten times the madvise calls of plain jemalloc that way). It is
 * emptied when its bins fill up and destroyed when the thread ends (not
 * flushed on a timer: jemalloc's tcache.flush of an explicit tcache
 * destroys it, and re-creating it zeroes a fresh one each time). If jemalloc
 * has no tcache to give, blocks go home one by one.
 */
static int remote_flags(void)
{
	if (ns_self.remote_tc == 0 && !ns_self.remote_failed) {
		unsigned id;
		size_t sz = sizeof(id);

		ns_self.remote_failed = 1; /* until it worked: no recursion */
		if (R.key_ok && nsje_mallctl("tcache.create", &id, &sz, NULL, 0) == 0) {
			ns_self.remote_tc = (int)id + 1;
			ns_self.remote_failed = 0;
			/* Its destructor destroys the tcache of a thread that
			 * did not start through our pthread_create. */
			pthread_setspecific(R.key, (void *)1);
		}
	}
	return ns_self.remote_tc ? MALLOCX_TCACHE(ns_self.remote_tc - 1)
				 : MALLOCX_TCACHE_NONE;
}
