/*
 * The batches that carry remote frees home (shim/remote.c): 512 bytes of
 * numashim's own memory each, mapped 64 KiB at a time (jemalloc's would be
 * blocks of some node's arenas), a few spares per thread, and a pool for
 * all threads.
 */
#include "shim/shim.h"
#include "shim/os.h"
#include "shim/remote.h"

#include <sys/mman.h>

#define REMOTE_SPARE 4                     /* empty batches a thread keeps */
#define REMOTE_CHUNK ((size_t)64 << 10)    /* mapped this much at a time */
#define REMOTE_MAPPED_MAX ((size_t)64 << 20) /* ... up to this in all */

static struct {
	size_t mapped;          /* bytes of batches mapped */
	/* Empty batches, under a lock held for a few instructions
	 * (pool_lock). A lock-free pool would need a pop of one entry without
	 * ABA; the first one's threads took the whole pool at once instead,
	 * and kept what they took, so the threads after them mapped more:
	 * batches grew with thread churn, 7.6 MiB after 1,000 thread exits
	 * (found by the remote-free review). */
	int pool_lock; /* 0 free, 1 held, 2 held with waiters */
	struct remote_batch *pool;
} B;

/*
 * A futex lock: a waiter sleeps until the holder lets go. It spun with
 * sched_yield, which never yields to a thread of lower real-time priority:
 * a SCHED_FIFO thread that preempted a lower-priority holder on the same
 * CPU would have spun for ever (found by a review, from reading).
 */
static void pool_lock(void)
{
	int c = 0;

	if (__atomic_compare_exchange_n(&B.pool_lock, &c, 1, false,
					__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(&B.pool_lock, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		os_futex_wait(&B.pool_lock, 2);
		c = __atomic_exchange_n(&B.pool_lock, 2, __ATOMIC_ACQUIRE);
	}
}

static void pool_unlock(void)
{
	if (__atomic_exchange_n(&B.pool_lock, 0, __ATOMIC_RELEASE) == 2)
		os_futex_wake(&B.pool_lock, 1);
}

/* first..last into the pool. */
static void pool_put(struct remote_batch *first, struct remote_batch *last)
{
	pool_lock();
	last->next = B.pool;
	B.pool = first;
	pool_unlock();
}

static struct remote_batch *pool_get(void)
{
	struct remote_batch *b;

	pool_lock();
	b = B.pool;
	if (b != NULL)
		B.pool = b->next;
	pool_unlock();
	return b;
}

/* A forked child's one thread: the lock a thread of the parent held is
 * free (the pool itself changes in a single store). */
void ns_remote_forked(void)
{
	B.pool_lock = 0;
}

/* An empty batch goes to the thread's spares, or to the pool. Always to
 * the pool past ns_remote_release: an ending thread's TLS destructors may
 * still reach its activity callback, whose drain would leave the batches
 * it emptied in spares nobody gives back (2 KiB a thread, until
 * REMOTE_MAPPED_MAX ended batching for good). */
void ns_batch_put(struct remote_batch *b)
{
	if (ns_self.spare_n < REMOTE_SPARE && !ns_self.remote_ending) {
		b->next = ns_self.spare;
		ns_self.spare = b;
		ns_self.spare_n++;
		return;
	}
	pool_put(b, b);
}

/* New batches, mapped by numashim (jemalloc's would be blocks of some
 * node's arenas); none under a seccomp filter or past REMOTE_MAPPED_MAX. */
static struct remote_batch *batch_map(void)
{
	struct remote_batch *b;
	size_t n = REMOTE_CHUNK / sizeof(*b);

	if (ns_sandboxed() ||
	    __atomic_add_fetch(&B.mapped, REMOTE_CHUNK, __ATOMIC_RELAXED) >
	    REMOTE_MAPPED_MAX) {
		__atomic_sub_fetch(&B.mapped, REMOTE_CHUNK, __ATOMIC_RELAXED);
		return NULL;
	}
	b = os_mmap(NULL, REMOTE_CHUNK, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED) {
		__atomic_sub_fetch(&B.mapped, REMOTE_CHUNK, __ATOMIC_RELAXED);
		return NULL;
	}
	for (size_t i = 1; i + 1 < n; i++)
		b[i].next = &b[i + 1];
	pool_put(&b[1], &b[n - 1]); /* for every thread, not this one's */
	return b;
}

/* A batch to fill: a spare, else one from the pool, else new ones. */
struct remote_batch *ns_batch_get(void)
{
	struct remote_batch *b = ns_self.spare;

	if (b == NULL)
		return (b = pool_get()) != NULL ? b : batch_map();
	ns_self.spare = b->next;
	ns_self.spare_n--;
	return b;
}

/* The end of a thread's remote frees: its spares go to the pool. */
void ns_batch_release(void)
{
	struct remote_batch *first = ns_self.spare, *last = first;

	while (last != NULL && last->next != NULL)
		last = last->next;
	if (first != NULL)
		pool_put(first, last);
	ns_self.spare = NULL;
	ns_self.spare_n = 0;
}
