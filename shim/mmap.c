/*
 * The mmap family, System V shm and the program's own NUMA calls.
 *
 * Large anonymous mappings (private or shared: PostgreSQL's shared buffers
 * are one MAP_SHARED|MAP_ANONYMOUS mapping) and shm segments get the
 * large-buffer policy (NUMASHIM_MMAP) before anything touches them. Left
 * alone, and counted with the reason: file mappings, MAP_FIXED placements
 * (the program manages that memory), hugetlb, stacks, mappings below the
 * threshold, mappings of a thread that set its own memory policy, and a
 * JVM that manages its heap with -XX:+UseNUMA.
 *
 * The program's own mbind/set_mempolicy always win: mbind lands after ours
 * on the same range and replaces it; a thread that sets a policy of its
 * own is taken off numashim's arenas and its mappings are left alone.
 * jemalloc's own mmap calls are renamed to nsje_sys_* at build time and go
 * straight to the kernel.
 */
#include "shim/shim.h"
#include "shim/os.h"
#include "shim/log.h"

#include <errno.h>
#include <linux/futex.h>
#include <numaif.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MPOL_MODE(m) ((m) & 0xff) /* without MPOL_F_* mode flags */

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
struct live { uintptr_t start, end, shm; int set; bool split, theirs; };

static struct live live_first[LIVE_FIRST];
static struct {
	int lock;
	int n, cap;
	struct live *m;
	bool full;    /* an entry was dropped: the figures undercount */
} L = { .cap = LIVE_FIRST, .m = live_first };
static int live_full_said;

static __thread bool in_table __attribute__((tls_model("initial-exec")));

/* Whether thread `tid` (a lock word without LIVE_WAITERS) is one of this
 * process's. */
static bool our_thread(int tid)
{
	return syscall(SYS_tgkill, getpid(), tid, 0) == 0 || errno != ESRCH;
}

static bool live_lock(void)
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
		syscall(SYS_futex, &L.lock, FUTEX_WAIT_PRIVATE, c | LIVE_WAITERS,
			NULL, NULL, 0);
		c = __atomic_load_n(&L.lock, __ATOMIC_RELAXED);
	}
	errno = saved;
	return true;
}

static void live_unlock(void)
{
	if (__atomic_exchange_n(&L.lock, 0, __ATOMIC_RELEASE) & LIVE_WAITERS) {
		int saved = errno;

		syscall(SYS_futex, &L.lock, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		errno = saved;
	}
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

static void live_unlock_said(void)
{
	bool full = L.full;

	live_unlock();
	if (full)
		ns_log_once(&live_full_said, "tracking the placed mappings", ENOMEM,
			    "the live mmap figures undercount from now on");
}

static uintptr_t page_end(uintptr_t b)
{
	return (b + 4095) & ~(uintptr_t)4095;
}

/* The kernel's ranges are whole pages: ends are rounded up (an entry
 * trimmed to an unaligned end stayed for ever; found by a review). */
static void live_add(void *p, size_t len, int set, bool split, uintptr_t shm)
{
	if (!live_lock())
		return;
	if (live_room())
		L.m[L.n++] = (struct live){ (uintptr_t)p, page_end((uintptr_t)p + len),
					    shm, set, split, false };
	live_unlock_said();
}

/* Forget [a, b): whole entries go, overlapped ends are trimmed; a hole in
 * the middle keeps the lower part only when the table is full. */
static void live_remove(uintptr_t a, uintptr_t b)
{
	b = page_end(b);
	if (!live_lock())
		return;
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
	live_unlock_said();
}

/* The placed mapping that holds addr: its set (-1 if none is known),
 * whether [addr, addr + len) lies inside it, was bound in runs and has no
 * policy of the program's since (mremap's retry), and its attach address
 * if it is part of a System V segment's attach (0 if not). */
static int live_find(uintptr_t addr, size_t len, bool *rebindable,
		     uintptr_t *shm)
{
	int set = -1;

	*rebindable = false;
	*shm = 0;
	if (L.n == 0 || !live_lock())
		return -1;
	for (int i = 0; i < L.n && set < 0; i++)
		if (addr >= L.m[i].start && addr < L.m[i].end) {
			set = L.m[i].set;
			*rebindable = L.m[i].split && !L.m[i].theirs &&
				      len <= L.m[i].end - addr;
			*shm = L.m[i].shm;
		}
	live_unlock();
	return set;
}

/* The set of the placed mapping that [addr, addr + len) lies inside, with
 * no policy of the program's since and not part of a shm attach; -1 if
 * none. */
static int live_inside(uintptr_t addr, size_t len)
{
	int set = -1;

	if (L.n == 0 || !live_lock())
		return -1;
	for (int i = 0; i < L.n && set < 0; i++)
		if (addr >= L.m[i].start && addr + len <= L.m[i].end &&
		    !L.m[i].theirs && L.m[i].shm == 0)
			set = L.m[i].set;
	live_unlock();
	return set;
}

/* The program set a policy of its own on [a, b): our entries there are
 * its to keep (mremap's retry must not rebind them). */
static void live_theirs(uintptr_t a, uintptr_t b)
{
	if (L.n == 0 || !live_lock())
		return;
	for (int i = 0; i < L.n; i++)
		if (a < L.m[i].end && b > L.m[i].start)
			L.m[i].theirs = true;
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

/* ------------------------------------------------ placement decision */

/* Which set places a large mapping of the calling thread: the large set
 * under NUMASHIM_MMAP=interleave, else (local, or a plan left with one
 * node, which has no large set) the thread's node set. */
static int mapping_set(void)
{
	if (ns.plan.mmap == POLICY_MMAP_INTERLEAVE && ns.plan.large_set >= 0)
		return ns.plan.large_set;
	if (ns_self.tag)
		return ns_self.set;
	return policy_set_for_cpu(&ns.plan, os_getcpu());
}

static int leave_reason(size_t len, int flags, bool anonymous)
{
	if (!anonymous)
		return NS_LEFT_FILE;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
		return NS_LEFT_FIXED;
	if (flags & MAP_HUGETLB)
		return NS_LEFT_HUGETLB;
	if (flags & (MAP_STACK | MAP_GROWSDOWN))
		return NS_LEFT_STACK;
	/* SIZE_MAX until placement is live, and under
	 * NUMASHIM_INTERLEAVE_MIN=off. */
	if (len < __atomic_load_n(&ns_large.map_min, __ATOMIC_ACQUIRE))
		return NS_LEFT_SMALL;
	if (ns_self.own_policy)
		return NS_LEFT_PROGRAM_POLICY;
	if (ns.jvm_numa)
		return NS_LEFT_JVM_NUMA;
	if (ns.plan.mmap == POLICY_MMAP_OFF || mapping_set() < 0)
		return NS_LEFT_OFF;
	return -1;
}

/*
 * A mapping placed in runs is one VMA per run, and a run first touched
 * under its own policy gets an anon_vma of its own: the kernel never
 * merges such runs again, not even once they have one policy, and mremap
 * cannot grow or move the mapping (EFAULT, see mremap below). One write
 * fault before the runs are bound gives the mapping one anon_vma, which
 * the runs share. The byte written is a zero on a zero page, and the page
 * is given back at once: with the first 2 MiB, a huge page under
 * transparent huge pages "always" (giving back 4 KiB of it would split it
 * and leave the rest, first-touched here). Private writable mappings
 * only: shared ones have no anon_vma, and one that cannot be written is
 * left as it is.
 */
static void share_anon_vma(void *p, size_t len, int prot, int flags)
{
	int saved = errno;

	if ((flags & MAP_SHARED) || !(prot & PROT_WRITE))
		return;
	*(volatile char *)p = 0;
	madvise(p, len < NS_CHUNK ? len : NS_CHUNK, MADV_DONTNEED);
	errno = saved;
}

/*
 * An anonymous MAP_FIXED mapping inside a large mapping we placed is
 * placed as that one was: a program that reserves its address space and
 * commits it piece by piece (a JVM's heap: -Xmx mapped PROT_NONE, then
 * mmap(MAP_FIXED) over it) made one large mapping, and each commit
 * replaced its VMA and our policy with it. A 256 MiB JVM heap touched
 * by its pre-touching thread was all on node 0 (glibc: 75/25). The
 * committing program manages its address space, not its placement; one
 * that mbinds the range (theirs) or has a policy of its own is left as
 * it is. The set, or -1.
 */
static int reserved_set(uintptr_t addr, size_t len, int flags)
{
	if (!(flags & MAP_FIXED) || (flags & (MAP_HUGETLB | MAP_STACK | MAP_GROWSDOWN)) ||
	    ns_self.own_policy || ns.jvm_numa || ns.plan.mmap == POLICY_MMAP_OFF)
		return -1;
	return live_inside(addr, len);
}

NS_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	int why, early, set, err, reserved = -1;
	bool split, unlocked = false;
	unsigned gen;
	void *p;

	if (!ns.active || ns_sandboxed())
		return os_mmap(addr, len, prot, flags, fd, off);
	why = leave_reason(len, flags, (flags & MAP_ANONYMOUS) != 0);
	if (why == NS_LEFT_FIXED &&
	    (reserved = reserved_set((uintptr_t)addr, len, flags)) >= 0)
		why = -1;
	gen = ns_mcl_gen(); /* before the state it is a snapshot for */
	early = why < 0 ? ns_early_flags(flags, prot, &unlocked) : 0;
	if (!unlocked ||
	    !ns_map_unlocked(addr, len, prot, flags, fd, off, &p)) {
		if (unlocked)
			early = 0; /* as the kernel would: locked, faulted in */
		unlocked = false;
		p = os_mmap(addr, len, prot, flags & ~early, fd, off);
	}
	if (p == MAP_FAILED)
		return p;
	/* Whatever was mapped there is gone, with its policy (but for a
	 * commit of a reservation, whose entry stays: placed again below). */
	if ((flags & MAP_FIXED) && L.n && reserved < 0)
		live_remove((uintptr_t)p, (uintptr_t)p + len);
	if (why >= 0) {
		NS_COUNT(mmap_left[why], 1);
		return p;
	}
	set = reserved >= 0 ? reserved : mapping_set();
	split = ns_place_splits(set);
	if (split)
		share_anon_vma(p, len, prot, flags);
	ns_place_range(p, len, set);
	if (early && (err = unlocked ? ns_lock_populate(p, len, gen)
				     : ns_populate(p, len, prot, early)) != 0) {
		os_munmap(p, len);
		errno = err;
		return MAP_FAILED;
	}
	if (reserved >= 0)
		return p; /* placed and counted as part of the reservation */
	live_add(p, len, set, split, 0);
	NS_COUNT(mmap_placed, 1);
	NS_COUNT(mmap_placed_bytes, len);
	return p;
}

NS_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off) __attribute__((alias("mmap")));

/* Placement needs nothing of munmap/mremap (a mapping's policy lives in
 * its VMA, and mremap carries it to the moved or grown range): they keep
 * the live figures of the stats segment right. jemalloc's calls never
 * reach them (see nsje_sys_*). */
NS_EXPORT int munmap(void *addr, size_t len)
{
	int rc = os_munmap(addr, len);

	if (rc == 0 && L.n)
		live_remove((uintptr_t)addr, (uintptr_t)addr + len);
	return rc;
}

/*
 * A placed mapping bound in runs (a weighted large set, the rotation of
 * huge pages) is one VMA per run, and the kernel grows or moves only a
 * range within one VMA: mremap failed with EFAULT on such a mapping (found
 * by a review: a 65 MiB mapping, two runs). When the range lies within
 * one such mapping of ours that the program has set no policy on (mbind
 * below), it is bound again as one range, which the kernel merges into
 * one VMA (the runs share one anon_vma: share_anon_vma): its pages stay
 * where they are, new ones follow the set's policy without the runs. The
 * call is retried once; if it fails again (the program split the mapping
 * some other way), the runs are bound as before.
 */
NS_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags,
		       ...)
{
	void *new_addr = NULL, *p;
	bool rebindable;
	uintptr_t shm;
	int set, entry = errno;

	if (flags & MREMAP_FIXED) {
		__builtin_va_list ap;

		__builtin_va_start(ap, flags);
		new_addr = __builtin_va_arg(ap, void *);
		__builtin_va_end(ap);
	}
	p = os_mremap(old, old_len, new_len, flags, new_addr);
	if (L.n == 0 || ns_sandboxed())
		return p;
	set = live_find((uintptr_t)old, old_len, &rebindable, &shm);
	if (p == MAP_FAILED && errno == EFAULT && rebindable &&
	    ns_place_range_whole(old, old_len, set) == 0) {
		p = os_mremap(old, old_len, new_len, flags, new_addr);
		if (p == MAP_FAILED) {
			int err = errno;

			ns_place_range(old, old_len, set);
			errno = err;
		} else {
			errno = entry; /* the first call's EFAULT is not the result */
		}
	}
	if (p == MAP_FAILED)
		return p;
	/* The old range goes (unless MREMAP_DONTUNMAP left it mapped, with
	 * its policy), and so does whatever MREMAP_FIXED replaced; the new
	 * range keeps the old one's set, in one VMA now, and stays part of
	 * its shm attach: shmdt then names the address the attach would have
	 * if it had moved with it, and a moved attach that kept its old entry
	 * was never forgotten (found by a review: one stale entry per attach,
	 * counted as live until something unmapped that range again). */
	if (set >= 0 && !(flags & MREMAP_DONTUNMAP))
		live_remove((uintptr_t)old, (uintptr_t)old + old_len);
	live_remove((uintptr_t)p, (uintptr_t)p + new_len);
	if (set >= 0)
		live_add(p, new_len, set, false,
			 shm ? (uintptr_t)p - ((uintptr_t)old - shm) : 0);
	return p;
}

/* A shm segment's policy is shared by every process that attaches it:
 * place it only when this attach is the only one and the segment has no
 * policy yet. Attached again after every other detach, one the program
 * bound (mbind) kept its policy, no longer replaced by ours; a hugetlb
 * segment (SHM_HUGETLB) is left alone, as hugetlb mappings are (both
 * found by a review). */
/* A segment attached under mlockall(MCL_FUTURE) without MCL_ONFAULT is
 * faulted in inside shmat, before the placement, and stays where the
 * kernel put it (README): shmat has no way to attach without access, and
 * MPOL_MF_MOVE moves no page that is on one of an interleave's nodes. */
NS_EXPORT void *shmat(int id, const void *addr, int flags)
{
	void *p = os_shmat(id, addr, flags);
	size_t size;
	unsigned long nattch;
	int why, set, mode;

	if (p == (void *)-1 || !ns.active || ns_sandboxed() ||
	    os_shm_info(id, &size, &nattch))
		return p;
	/* SHM_REMAP replaced whatever was mapped there, with its policy. */
	if (L.n)
		live_remove((uintptr_t)p, (uintptr_t)p + size);
	why = leave_reason(size, 0, true);
	if (why < 0 && size > 4096 && os_is_hugetlb(p))
		why = NS_LEFT_HUGETLB;
	if (why >= 0) {
		NS_COUNT(mmap_left[why], 1);
		return p;
	}
	if (nattch != 1 || os_addr_policy(p, &mode) || mode != MPOL_DEFAULT) {
		NS_COUNT(shm_attached, 1);
		return p;
	}
	set = mapping_set();
	ns_place_range(p, size, set);
	live_add(p, size, set, ns_place_splits(set), (uintptr_t)p);
	NS_COUNT(shm_placed, 1);
	NS_COUNT(shm_placed_bytes, size);
	return p;
}

/* Every piece of the attach goes: shmdt unmaps them all, also when the
 * program unmapped a hole in it or its head (only the entry starting at
 * addr went, and the rest stayed counted as live). */
NS_EXPORT int shmdt(const void *addr)
{
	int rc = (int)os_shmdt(addr);

	if (rc == 0 && L.n && live_lock()) {
		for (int i = 0; i < L.n; i++)
			if (L.m[i].shm == (uintptr_t)addr)
				L.m[i--] = L.m[--L.n];
		live_unlock();
	}
	return rc;
}

/* ------------------------------------------------ the program's own NUMA */

long mbind(void *start, unsigned long len, int mode, const unsigned long *mask,
	   unsigned long maxnode, unsigned flags)
	__attribute__((visibility("default")));

long mbind(void *start, unsigned long len, int mode, const unsigned long *mask,
	   unsigned long maxnode, unsigned flags)
{
	long rc = os_mbind_raw(start, len, mode, mask, maxnode, flags);

	if (rc == 0) {
		NS_COUNT(program_mbind, 1);
		live_theirs((uintptr_t)start, (uintptr_t)start + len);
	}
	return rc;
}

long set_mempolicy(int mode, const unsigned long *mask, unsigned long maxnode)
	__attribute__((visibility("default")));

long set_mempolicy(int mode, const unsigned long *mask, unsigned long maxnode)
{
	long rc = os_set_mempolicy_raw(mode, mask, maxnode);

	if (rc == 0) {
		NS_COUNT(program_set_mempolicy, 1);
		ns_thread_own_policy(MPOL_MODE(mode) != MPOL_DEFAULT);
	}
	return rc;
}
