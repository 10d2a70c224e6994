/*
 * Remote frees: a block of another node's arenas that this thread frees
 * goes back to its home node, never into this thread's own cache, where
 * its next malloc would hand it out again on the wrong node (origin-aware
 * free; free in shim/malloc.c finds such blocks by their tag).
 *
 * Small blocks (jemalloc's slab classes, up to 14 KiB with 4 KiB pages)
 * are handed to a thread of their home node in batches:
 *  - the freeing thread writes their addresses into a batch of its own
 *    (struct remote_batch, numashim's memory: the blocks are not touched),
 *    up to REMOTE_BATCH blocks of one home and REMOTE_PENDING_BYTES;
 *  - a full batch, a block of another home, the thread's activity callback
 *    and its end send the batch to its home's stack: one compare-and-swap;
 *  - each thread of the home node takes its node's whole stack in its
 *    activity callback (about every 64 KiB it allocates or frees) and
 *    frees the blocks into its own cache, where its next mallocs reuse
 *    them (ns_remote_tick); the empty batches go back to a pool.
 * Sent through jemalloc's dallocx instead, a block cost the freeing thread
 * about 130 instructions, and reached the home's threads only through
 * their arena's bins, a lock each way. A first version linked the blocks
 * through their own first word: the home thread's walk then missed the
 * cache at every block, written last on the other CPU, and bench/xmalloc
 * ran 13 % slower.
 *
 * A home's stack holds at most about half of what a home thread allocates
 * between two activity callbacks (REMOTE_PENDING_BYTES): a thread that
 * frees more for a home than its threads take back (a producer/consumer
 * pipeline; a home thread that waits) sends the excess through jemalloc
 * itself, and skips the batch for that home until the stack has room
 * again. Without the bound, a producer on node 0 whose consumers were on
 * node 1 did all the freeing work: medians of 8-12 interleaved runs under
 * 2 emulated nodes, dallocx for every block / this with a bound of 64, 32,
 * 16 KiB / plain jemalloc (bench/history/2026-11-24.md section 16):
 *   service                   0.306  0.286  0.275  0.285   0.265
 *   xmalloc                   0.179  0.193  0.177  0.173   0.150
 *   xmalloc, producers on CPU 0, consumers on CPU 1:
 *                             0.183  0.184  0.173  0.169   0.144
 * A stack no home thread takes for REMOTE_STALE_MS goes home through
 * jemalloc from another thread's callback. Larger blocks, those of a
 * thread that is ending, and all of them when no batch can be had, go
 * through jemalloc at once: a batch must not hold megabytes for a thread
 * that may never allocate again.
 *
 * Not async-signal-safe, as jemalloc's own thread cache is not: a free
 * from a signal handler that interrupts one here may lose blocks or free
 * them twice (plain jemalloc deadlocks on a bin lock there; the review's
 * stress program crashed the code before this too).
 */
#include "shim/shim.h"
#include "shim/remote.h"

#include <pthread.h>
#include <stdio.h>

/* A home's stack holds at most these: jemalloc's activity callback comes
 * about every 64 KiB a thread allocates or frees (see the top). */
#define REMOTE_PENDING_BYTES ((long)32 << 10)
#define REMOTE_PENDING_BATCHES 32
#define REMOTE_STALE_MS 1000     /* a stack no home thread took that long */
#define REMOTE_STALE_EVERY 16    /* activity callbacks between two looks */

/* One node set's stack of batches, on a cache line of its own: the
 * threads that send to it and those that take it write here. */
struct remote_home {
	struct remote_batch *head;
	long bytes, batches;  /* about how much: senders add, a take zeroes */
	uint64_t since_ms;    /* when it last went from empty to not */
} __attribute__((aligned(64)));

static struct {
	pthread_key_t key;      /* ends the remote frees of a thread */
	bool key_ok;
	size_t list_max;        /* largest block that is batched; 0 none */
	struct remote_home home[POLICY_MAX_SETS];
} R;

static int remote_flags(void);
static void ns_remote_count(void);

/* The largest small class, from jemalloc itself: it is 14 KiB with 4 KiB
 * pages, more with larger pages, but never more than a stack takes (a
 * batch of one such block would be refused by an empty one). Without it,
 * no block is batched. */
void ns_remote_init(void)
{
	unsigned nbins = 0;
	size_t sz = sizeof(nbins), max = 0;
	char name[64];

	R.key_ok = pthread_key_create(&R.key, ns_remote_release) == 0;
	if (nsje_mallctl("arenas.nbins", &nbins, &sz, NULL, 0) || nbins == 0)
		return;
	snprintf(name, sizeof(name), "arenas.bin.%u.size", nbins - 1);
	sz = sizeof(max);
	if (nsje_mallctl(name, &max, &sz, NULL, 0) == 0)
		R.list_max = max < (size_t)REMOTE_PENDING_BYTES
			     ? max : (size_t)REMOTE_PENDING_BYTES;
}

/* -------------------------------------------------------------- batches */

/* b onto a home's stack; the head it went on top of (NULL: it was
 * empty). */
static struct remote_batch *push(struct remote_home *r, struct remote_batch *b)
{
	struct remote_batch *old = __atomic_load_n(&r->head, __ATOMIC_RELAXED);

	do
		b->next = old;
	while (!__atomic_compare_exchange_n(&r->head, &old, b, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	return old;
}

/* A stack's batches, all of them, and its counts back to 0. A sender adds
 * its bytes before it pushes: one whose push comes after the take's
 * exchange, or whose add comes between the exchange and the zeroing, is
 * not counted until the next take (the count can only come out low: a
 * soft bound). */
static struct remote_batch *take(struct remote_home *r)
{
	struct remote_batch *b = __atomic_exchange_n(&r->head, NULL,
						     __ATOMIC_ACQUIRE);

	__atomic_store_n(&r->bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->batches, 0, __ATOMIC_RELAXED);
	return b;
}

/* A stack no home thread took: its blocks go home through jemalloc,
 * straight to the arena (the thread's explicit tcache would hold them
 * until its bins fill). */
static void remote_home_free(struct remote_home *r)
{
	struct remote_batch *b = take(r);

	while (b != NULL) {
		struct remote_batch *next = b->next;

		for (uint32_t i = 0; i < b->n; i++)
			nsje_dallocx(b->p[i], MALLOCX_TCACHE_NONE);
		ns_batch_put(b);
		b = next;
	}
}

/* ---------------------------------------------------------------- sending */

/* The thread's batch goes onto its home's stack. It is cut from the thread
 * first: a free that interrupts this starts a new one. */
static void ns_remote_send(void)
{
	uint8_t set = ns_self.pend_set;
	struct remote_batch *b = ns_self.pend;
	unsigned n = ns_self.pend_n;
	uint32_t bytes = ns_self.pend_bytes;
	struct remote_home *r;

	ns_self.pend_set = 0;
	if (b == NULL)
		return;
	ns_self.pend_n = 0;
	ns_self.pend_bytes = 0;
	/* Empty, it stays for the next. Set 0 with blocks: a free from a
	 * signal handler sent the batch in the middle of the fast path; what
	 * is left in it is dropped (see top). */
	if (n == 0 || set == 0)
		return;
	NS_COUNT(remote_frees_set[set - 1], n);
	r = &R.home[set - 1];
	ns_self.pend = NULL;
	/* The home's threads take no more than they allocate meanwhile:
	 * beyond, this thread sends them through jemalloc itself, and the
	 * batch stays its own. */
	if (__atomic_load_n(&r->bytes, __ATOMIC_RELAXED) + (long)bytes >
	    REMOTE_PENDING_BYTES ||
	    __atomic_load_n(&r->batches, __ATOMIC_RELAXED) >=
	    REMOTE_PENDING_BATCHES) {
		int flags = remote_flags();

		/* Cut from the thread (above) while jemalloc frees its
		 * blocks: a free can run the activity callback, whose drain,
		 * should the thread change node in it, batches blocks anew
		 * (found by a review, from reading: they would overwrite
		 * these). */
		for (unsigned i = 0; i < n; i++)
			nsje_dallocx(b->p[i], flags);
		if (ns_self.pend == NULL)
			ns_self.pend = b; /* empty, for the next */
		else
			ns_batch_put(b);
		/* Until its stack has room again (recheck_congested), this
		 * home's blocks skip the batch and its size lookup. */
		ns_self.congested = set;
		return;
	}
	b->n = n;
	__atomic_add_fetch(&r->bytes, (long)bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->batches, 1, __ATOMIC_RELAXED);
	/* b belongs to the stack from here: a taker may have it already. */
	if (push(r, b) == NULL)
		__atomic_store_n(&r->since_ms, ns_now_ms(), __ATOMIC_RELAXED);
}

/* A block that is not batched: through jemalloc, at once. */
static NS_NOINLINE void free_home(void *p, uint8_t home)
{
	if (ns_self.remote_ending) { /* no count left for its end */
		NS_COUNT(remote_frees_set[home - 1], 1);
		nsje_dallocx(p, MALLOCX_TCACHE_NONE);
		return;
	}
	if (ns_self.direct_set != home || ns_self.direct_n >= REMOTE_BATCH)
		ns_remote_count();
	ns_self.direct_set = home;
	ns_self.direct_n++;
	nsje_dallocx(p, ns_self.remote_tc ? MALLOCX_TCACHE(ns_self.remote_tc - 1)
					  : remote_flags());
}

/* The blocks free_home sent are counted in one add per home and batch:
 * one atomic add per block would have every thread that frees remotely
 * fight over that counter's cache line. Also from the activity callback
 * and the thread's end. */
static void ns_remote_count(void)
{
	if (ns_self.direct_n)
		NS_COUNT(remote_frees_set[ns_self.direct_set - 1],
			 ns_self.direct_n);
	ns_self.direct_n = 0;
}

/* The key's destructor ends the remote frees of a thread that did not
 * start through our pthread_create: its batch is sent, its tcache goes. */
static void remote_keyed(void)
{
	if (!ns_self.remote_keyed && R.key_ok) {
		ns_self.remote_keyed = 1;
		pthread_setspecific(R.key, (void *)1);
	}
}

/* Whether a block of `size` bytes more would take the thread's batch past
 * REMOTE_PENDING_BYTES: a batch stops there as well as at REMOTE_BATCH
 * blocks. The bytes of a full one (62 blocks of 640 bytes are 40 KiB) were
 * more than even an empty stack takes: every block above 528 bytes went
 * through jemalloc after its size lookup and a place in a batch, for
 * nothing (tests/integration/remote_free.c reuse-640). */
static inline bool batch_over(size_t size)
{
	return ns_self.pend_bytes + size > (size_t)REMOTE_PENDING_BYTES;
}

/* A small block off the batch's common path: the first of a batch, one of
 * another home than the batch's, one the batch has no room for (count or
 * bytes), the last of a batch, or one freed by a thread that is ending. */
static NS_NOINLINE void free_batched(void *p, uint8_t home, size_t size)
{
	if (ns_self.remote_ending) {
		free_home(p, home);
		return;
	}
	if (ns_self.pend_set != home || batch_over(size))
		ns_remote_send();
	if (ns_self.pend == NULL) {
		remote_keyed();
		ns_self.pend = ns_batch_get();
		if (ns_self.pend == NULL) {
			free_home(p, home);
			return;
		}
		ns_self.pend_n = 0;
		ns_self.pend_bytes = 0;
	}
	ns_self.pend->p[ns_self.pend_n] = p;
	ns_self.pend_bytes += (uint32_t)size;
	ns_self.pend_set = home;
	if (++ns_self.pend_n >= REMOTE_BATCH)
		ns_remote_send();
}

/* A thread with no node tag: not bound yet (not made through our
 * pthread_create), bound now, and the block may be its own (freed here:
 * true); or one with a memory policy of its own (ns_thread_own_policy),
 * whose frees all go home like any remote free. */
static NS_NOINLINE bool free_unbound(void *p, uint8_t home)
{
	if (ns_thread_ensure_bound() && home == ns_self.tag) {
		nsje_free(p);
		return true;
	}
	return false;
}

/* home: the block's tag, never 0 or this thread's (free read it). The
 * common case, a small block of the batch's home with the batch not full,
 * takes no stack frame. pend_set is 0 whenever pend is NULL. */
void ns_free_foreign(void *p, uint8_t home)
{
	size_t size;

	if (NS_UNLIKELY(home == ns_large.tag)) {
		ns_large_free(p);
		return;
	}
	if (NS_UNLIKELY(ns_self.tag == 0) && free_unbound(p, home))
		return;
	if (NS_UNLIKELY(home == ns_self.congested)) {
		free_home(p, home);
		return;
	}
	size = nsje_sallocx(p, 0);
	if (NS_UNLIKELY(size > R.list_max)) {
		free_home(p, home);
		return;
	}
	if (NS_LIKELY(ns_self.pend_set == home &&
		      ns_self.pend_n < REMOTE_BATCH - 1 && !batch_over(size))) {
		ns_self.pend->p[ns_self.pend_n++] = p;
		ns_self.pend_bytes += (uint32_t)size;
		return;
	}
	free_batched(p, home, size);
}

/* --------------------------------------------------------------- taking */

/* The blocks other threads sent to the thread's node go into its own
 * cache, by a plain free (their tag is its own). Should the thread change
 * node in the middle (a rebind from a nested callback), the rest take the
 * remote path like any other block. */
static NS_NOINLINE void drain_own(uint8_t tag)
{
	struct remote_batch *b = take(&R.home[tag - 1]);

	while (b != NULL) {
		struct remote_batch *next = b->next;

		for (uint32_t i = 0; i < b->n; i++)
			if (ns_self.tag == tag)
				nsje_free(b->p[i]);
			else
				ns_free_foreign(b->p[i], tag);
		ns_batch_put(b);
		b = next;
	}
}

/* Stacks of other homes that no thread took for REMOTE_STALE_MS go home
 * through jemalloc. */
static NS_NOINLINE void reap_stale(uint8_t tag)
{
	int sets = ns.plan.nr_sets < POLICY_MAX_SETS ? ns.plan.nr_sets
						     : POLICY_MAX_SETS;
	uint64_t now = 0;

	for (int s = 0; s < sets; s++) {
		struct remote_home *r = &R.home[s];

		if (s + 1 == tag ||
		    __atomic_load_n(&r->head, __ATOMIC_RELAXED) == NULL)
			continue;
		if (now == 0)
			now = ns_now_ms();
		if (now - __atomic_load_n(&r->since_ms, __ATOMIC_RELAXED) >=
		    REMOTE_STALE_MS)
			remote_home_free(r);
	}
}

/* A home stays congested for this thread while its stack is over half
 * full: a batch made only to be found over the bound at its send costs a
 * size lookup a block for nothing (xmalloc under callgrind, 2 emulated
 * nodes: 305 instructions an op, where the thread's next callback
 * always tried again). */
static void recheck_congested(void)
{
	struct remote_home *r = &R.home[ns_self.congested - 1];

	if (__atomic_load_n(&r->bytes, __ATOMIC_RELAXED) <
	    REMOTE_PENDING_BYTES / 2 &&
	    __atomic_load_n(&r->batches, __ATOMIC_RELAXED) <
	    REMOTE_PENDING_BATCHES / 2)
		ns_self.congested = 0;
}

/* From the activity callback of an active numashim (about every 64 KiB of
 * the thread's allocations and frees): its batch sent, its count added,
 * its node's stack taken; the other stacks' age at every
 * REMOTE_STALE_EVERY-th (the clock read and the loop over the sets were
 * most of the cost). */
void ns_remote_tick(void)
{
	uint8_t tag = ns_self.tag;

	if (ns_self.draining)
		return;
	ns_self.draining = 1;
	if (ns_self.pend_set)
		ns_remote_send();
	if (ns_self.direct_n)
		ns_remote_count();
	if (ns_self.congested)
		recheck_congested();
	if (tag != 0 && tag != ns_large.tag &&
	    __atomic_load_n(&R.home[tag - 1].head, __ATOMIC_RELAXED) != NULL)
		drain_own(tag);
	if (++ns_self.stale_tick % REMOTE_STALE_EVERY == 0)
		reap_stale(tag);
	ns_self.draining = 0;
}

/* ---------------------------------------------------------------- the end */

void ns_remote_release(void *unused)
{
	unsigned id;

	(void)unused;
	/* A dying thread makes no new tcache and keeps no batch: what its TLS
	 * destructors free goes home one block at a time. remote_tc goes to 0
	 * with it: free_home then passes MALLOCX_TCACHE_NONE. Set before the
	 * send: a refused batch's frees may run the activity callback, and
	 * what a drain there batched anew was dropped below with pend_set
	 * left on, for the next free to write through a NULL batch. */
	ns_self.remote_ending = 1;
	ns_self.remote_failed = 1;
	ns_remote_send();
	ns_remote_count();
	if (ns_self.pend != NULL) /* sent empty: kept for the next */
		ns_batch_put(ns_self.pend);
	ns_self.pend = NULL;
	ns_batch_release();
	if (ns_self.remote_tc == 0)
		return;
	id = (unsigned)(ns_self.remote_tc - 1);
	ns_self.remote_tc = 0;
	nsje_mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id));
}

/*
 * Blocks sent home through jemalloc go through an explicit jemalloc tcache
 * of the thread's that nothing ever allocates from: blocks wait there and
 * go home in batches, a bin lock per batch, where MALLOCX_TCACHE_NONE took
 * the home bin's lock for every block and ticked its decay each time (the
 * "service" benchmark made ten times the madvise calls of plain jemalloc
 * that way). It is emptied when its bins fill up and destroyed when the
 * thread ends (not flushed on a timer: jemalloc's tcache.flush of an
 * explicit tcache destroys it, and re-creating it zeroes a fresh one each
 * time). If jemalloc has no tcache to give, blocks go home one by one.
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
			remote_keyed();
		}
	}
	return ns_self.remote_tc ? MALLOCX_TCACHE(ns_self.remote_tc - 1)
				 : MALLOCX_TCACHE_NONE;
}
