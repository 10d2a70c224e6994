/*
 * The table of the large mappings numashim placed (shim/mmap.c places
 * them): their bytes per set for the stats segment's mmap band, what a
 * MAP_FIXED, munmap, mremap or shmdt leaves of them, and which of them the
 * program has bound itself since.
 */
#include "shim/shim.h"
#include "shim/os.h"
#include "shim/log.h"
#include "shim/mmap_live.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------ live placed mappings */

/*
 * The mappings we placed, for the stats segment's mmap band, under a small
 * futex lock whose word is the holder's thread id (0 free), with
 * LIVE_WAITERS set while another thread waits. A thread that comes back
 * into the table (a signal handler that interrupted it inside, or while it
 * took or gave the lock) skips its update instead of waiting for itself,
 * and so does a process that finds the lock held by a thread that is not
 * one of its own (tgkill(pid, tid, 0) fails): a child made by _Fork() or a
 * raw clone() (no fork handler reset the lock; in a pid namespace of its
 * own too), a vfork child (in its parent's memory). The figure is then
 * off by that mapping. Every other caller waits: a try-lock that gave up
 * after 1,000 spins left entries behind for good under contention (1 to 4
 * stale 2 MiB entries after 32 threads each mapped and unmapped 20,000
 * times). Three reviews found that, and then a handler's deadlock, a
 * _Fork child's hang and a holder's pid kept apart from the lock word
 * (read stale, or equal in another pid namespace) in earlier versions.
 */
#define LIVE_FIRST 512
#define LIVE_MAX 65536 /* 2 MiB of entries */
#define LIVE_WAITERS 0x40000000 /* above any thread id (pid_max <= 2^22) */

/* split: bound in runs; theirs: the program set a policy on it since;
 * shm: the address of the System V attach it is part of (0 if none):
 * shmdt of that address detaches every piece of it, the rest of a
 * partial munmap and a piece mremap moved included (the kernel finds
 * them by their offset in the segment). */

static struct live live_first[LIVE_FIRST];
struct ns_live_table ns_live = { .cap = LIVE_FIRST, .m = live_first };
#define L ns_live
static int live_full_said;

static __thread bool in_table __attribute__((tls_model("initial-exec")));

/* Whether thread `tid` (a lock word without LIVE_WAITERS) is one of this
 * process's. */
static bool our_thread(int tid)
{
	return syscall(SYS_tgkill, getpid(), tid, 0) == 0 || errno != ESRCH;
}

bool live_lock(void)
{
	int c = 0, tid, saved;

	if (in_table)
		return false;
	in_table = true;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tid = (int)syscall(SYS_gettid);
	if (__atomic_compare_exchange_n(&L.lock, &c, tid, false, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED))
		return true;
	saved = errno;
	for (;;) {
		if (c == 0) {
			/* Free again: taken with the waiters' bit, since others
			 * may still sleep. */
			if (__atomic_compare_exchange_n(&L.lock, &c, tid | LIVE_WAITERS,
							false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				break;
			continue;
		}
		if (!our_thread(c & ~LIVE_WAITERS)) {
			errno = saved;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			in_table = false;
			return false;
		}
		if (!(c & LIVE_WAITERS) &&
		    !__atomic_compare_exchange_n(&L.lock, &c, c | LIVE_WAITERS, false,
						 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			continue; /* changed meanwhile: look again */
		os_futex_wait(&L.lock, c | LIVE_WAITERS);
		c = __atomic_load_n(&L.lock, __ATOMIC_RELAXED);
	}
	errno = saved;
	return true;
}

void live_unlock(void)
{
	if (__atomic_exchange_n(&L.lock, 0, __ATOMIC_RELEASE) & LIVE_WAITERS)
		os_futex_wake(&L.lock, 1);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	in_table = false;
}

/* Whether the page at a is mapped (mincore fails with ENOMEM if not). */
static bool page_mapped(uintptr_t a)
{
	unsigned char v;
	int saved = errno;
	bool mapped = syscall(SYS_mincore, a & ~(uintptr_t)4095, 4096UL, &v) == 0 ||
		      errno != ENOMEM;

	errno = saved;
	return mapped;
}

/* In a fork's child: another thread of the parent may have held the lock
 * (the stats helper reading the table); no one holds it in the child.
 * A mapping the parent marked MADV_DONTFORK is not the child's: its entry
 * goes (found by a review: the child counted a mapping it did not have). */
void ns_mmap_forked(void)
{
	/* Read first: a write would copy the page the fork shared. */
	if (__atomic_load_n(&L.lock, __ATOMIC_RELAXED))
		__atomic_store_n(&L.lock, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < L.n; i++)
		if (!page_mapped(L.m[i].start) || !page_mapped(L.m[i].end - 1))
			L.m[i--] = L.m[--L.n];
}

/* Room for one more entry, under the lock: the table grows by doubling,
 * in memory of its own (raw mmap: no placement, no recursion), up to
 * LIVE_MAX entries. A full table drops the entry, and says so once. */
static bool live_room(void)
{
	size_t bytes;
	struct live *m, *old;
	int saved;

	if (L.n < L.cap)
		return true;
	if (L.cap >= LIVE_MAX) {
		L.full = true;
		return false;
	}
	saved = errno;
	bytes = 2 * (size_t)L.cap * sizeof(*m);
	m = os_mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved;
	if (m == MAP_FAILED) {
		L.full = true;
		return false;
	}
	memcpy(m, L.m, (size_t)L.n * sizeof(*m));
	/* The new table is in place before the old one goes: a fork by
	 * another thread in between leaves its child (ns_mmap_forked reads
	 * the table) a table that is mapped, with a capacity no larger than
	 * the table it sees (found by the concurrency review). */
	old = L.m;
	__atomic_store_n(&L.m, m, __ATOMIC_RELEASE);
	__atomic_store_n(&L.cap, L.cap * 2, __ATOMIC_RELEASE);
	if (old != live_first)
		os_munmap(old, (size_t)L.cap / 2 * sizeof(*m));
	errno = saved;
	return true;
}

/* Keeps errno: munmap and mremap may return a failure through it. */
void live_unlock_said(void)
{
	bool full = L.full;
	int saved = errno;

	live_unlock();
	if (full)
		ns_log_once(&live_full_said, "tracking the placed mappings", ENOMEM,
			    "the live mmap figures undercount from now on");
	errno = saved;
}

static uintptr_t page_end(uintptr_t b)
{
	return (b + 4095) & ~(uintptr_t)4095;
}

/* The kernel's ranges are whole pages: ends are rounded up (an entry
 * trimmed to an unaligned end stayed for ever; found by a review). */
void live_add_locked(void *p, size_t len, int set, bool split, uintptr_t shm)
{
	if (live_room())
		L.m[L.n++] = (struct live){ (uintptr_t)p, page_end((uintptr_t)p + len),
					    shm, set, split, false };
}

void live_add(void *p, size_t len, int set, bool split, uintptr_t shm)
{
	if (!live_lock())
		return;
	live_add_locked(p, len, set, split, shm);
	live_unlock_said();
}

/* Forget [a, b): whole entries go, overlapped ends are trimmed; a hole in
 * the middle keeps the lower part only when the table is full. */
void live_remove_locked(uintptr_t a, uintptr_t b)
{
	b = page_end(b);
	for (int i = 0; i < L.n; i++) {
		uintptr_t s = L.m[i].start, e = L.m[i].end;

		if (b <= s || a >= e)
			continue;
		if (a <= s && b >= e) {
			L.m[i--] = L.m[--L.n];
			continue;
		}
		if (a <= s) {
			L.m[i].start = b;
		} else if (b >= e) {
			L.m[i].end = a;
		} else {
			L.m[i].end = a;
			if (live_room()) {
				L.m[L.n] = L.m[i];
				L.m[L.n].start = b;
				L.m[L.n].end = e;
				L.n++;
			}
		}
	}
}

void live_remove(uintptr_t a, uintptr_t b)
{
	if (!live_lock())
		return;
	live_remove_locked(a, b);
	live_unlock_said();
}

/* A copy of the placed mapping that holds addr (the entries do not
 * overlap): false if none is known. */
bool live_at_locked(uintptr_t addr, struct live *e)
{
	for (int i = 0; i < L.n; i++)
		if (addr >= L.m[i].start && addr < L.m[i].end) {
			*e = L.m[i];
			return true;
		}
	return false;
}

bool live_at(uintptr_t addr, struct live *e)
{
	bool found;

	if (L.n == 0 || !live_lock())
		return false;
	found = live_at_locked(addr, e);
	live_unlock();
	return found;
}

/* The program set a policy of its own on [a, b): our entries there are
 * its to keep (mremap's retry must not rebind them). */
void live_theirs_locked(uintptr_t a, uintptr_t b)
{
	for (int i = 0; i < L.n; i++)
		if (a < L.m[i].end && b > L.m[i].start)
			L.m[i].theirs = true;
}

void live_theirs(uintptr_t a, uintptr_t b)
{
	if (L.n == 0 || !live_lock())
		return;
	live_theirs_locked(a, b);
	live_unlock();
}

void ns_mmap_live(uint64_t bytes[POLICY_MAX_SETS], uint64_t count[POLICY_MAX_SETS])
{
	if (!live_lock())
		return;
	for (int i = 0; i < L.n; i++) {
		bytes[L.m[i].set] += L.m[i].end - L.m[i].start;
		count[L.m[i].set]++;
	}
	live_unlock();
}

/* Drops every entry of the System V attach at `addr` (shmdt). */
void live_drop_attach_locked(uintptr_t addr)
{
	for (int i = 0; i < L.n; i++)
		if (L.m[i].shm == addr)
			L.m[i--] = L.m[--L.n];
}
