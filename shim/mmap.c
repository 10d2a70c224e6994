/*
 * The mmap family, System V shm and the program's own NUMA calls.
 *
 * Large anonymous mappings (private or shared: PostgreSQL's shared buffers
 * are one MAP_SHARED|MAP_ANONYMOUS mapping) and shm segments get the
 * large-buffer policy (NUMASHIM_MMAP) before anything touches them. Left
 * alone, and counted with the reason: file mappings, MAP_FIXED placements
 * (the program manages that memory; but for a commit inside a mapping we
 * placed, reserved_set), hugetlb, stacks, mappings below the
 * threshold, mappings of a thread that set its own memory policy, and a
 * JVM that manages its heap with -XX:+UseNUMA.
 *
 * The program's own mbind/set_mempolicy always win: mbind lands after ours
 * on the same range and replaces it; a thread that sets a policy of its
 * own is taken off numashim's arenas and its mappings are left alone.
 * jemalloc's own mmap calls are renamed to nsje_sys_* at build time and go
 * straight to the kernel. The table of what we placed is shim/mmap_live.c.
 */
#include "shim/shim.h"
#include "shim/os.h"
#include "shim/log.h"
#include "shim/mmap_live.h"

#include <errno.h>
#include <linux/futex.h>
#include <numaif.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MPOL_MODE(m) ((m) & 0xff) /* without MPOL_F_* mode flags */

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
	struct live e;

	if (!(flags & MAP_FIXED) || (flags & (MAP_HUGETLB | MAP_STACK | MAP_GROWSDOWN)) ||
	    ns_self.own_policy || ns.jvm_numa || ns.plan.mmap == POLICY_MMAP_OFF ||
	    !live_at(addr, &e) || len > e.end - addr || e.theirs || e.shm)
		return -1;
	return e.set;
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
	if ((flags & MAP_FIXED) && ns_live.n && reserved < 0)
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
 * the table right (the stats segment's live figures, a MAP_FIXED commit's
 * reservation, mremap's retry). jemalloc's calls never reach them (see
 * nsje_sys_*). The table's lock is held across the system call: another
 * thread's placed mapping made at the freed address in between was added
 * before the entries went, and went with them (2 commits of 320,000 in
 * 32 threads that reserve, commit and unmap were not placed; found by a
 * review). With nothing placed there is nothing to keep: a mapping added
 * meanwhile is at an address this call does not free. */
NS_EXPORT int munmap(void *addr, size_t len)
{
	int rc;

	/* Under a seccomp filter, as mremap: the lock's gettid (and tgkill
	 * when contended) are system calls of numashim's own, and nothing
	 * reads the table there (no placement, no statistics). */
	if (ns_live.n == 0 || ns_sandboxed() || !live_lock())
		return os_munmap(addr, len);
	rc = os_munmap(addr, len);
	if (rc == 0)
		live_remove_locked((uintptr_t)addr, (uintptr_t)addr + len);
	live_unlock_said();
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
	struct live e;
	bool rebindable;
	uintptr_t shm;
	int set, entry = errno;

	if (flags & MREMAP_FIXED) {
		__builtin_va_list ap;

		__builtin_va_start(ap, flags);
		new_addr = __builtin_va_arg(ap, void *);
		__builtin_va_end(ap);
	}
	/* Under the table's lock, as munmap. */
	if (ns_live.n == 0 || ns_sandboxed() || !live_lock())
		return os_mremap(old, old_len, new_len, flags, new_addr);
	p = os_mremap(old, old_len, new_len, flags, new_addr);
	/* The placed mapping old lies in: bound in runs, no policy of the
	 * program's since, and the range within it (the retry below); its
	 * attach address if it is part of a System V attach. */
	set = live_at_locked((uintptr_t)old, &e) ? e.set : -1;
	rebindable = set >= 0 && e.split && !e.theirs &&
		     old_len <= e.end - (uintptr_t)old;
	shm = set >= 0 ? e.shm : 0;
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
	if (p == MAP_FAILED) {
		live_unlock_said();
		return p;
	}
	/* The old range goes (unless MREMAP_DONTUNMAP left it mapped, with
	 * its policy), and so does whatever MREMAP_FIXED replaced; the new
	 * range keeps the old one's set, in one VMA now, and stays part of
	 * its shm attach: shmdt then names the address the attach would have
	 * if it had moved with it, and a moved attach that kept its old entry
	 * was never forgotten (found by a review: one stale entry per attach,
	 * counted as live until something unmapped that range again). */
	if (set >= 0 && !(flags & MREMAP_DONTUNMAP))
		live_remove_locked((uintptr_t)old, (uintptr_t)old + old_len);
	live_remove_locked((uintptr_t)p, (uintptr_t)p + new_len);
	if (set >= 0)
		live_add_locked(p, new_len, set, false,
				shm ? (uintptr_t)p - ((uintptr_t)old - shm) : 0);
	/* A range the program set a policy on stays its own where it moved
	 * (a MAP_FIXED commit inside it was placed: large_host "program"). */
	if (set >= 0 && e.theirs)
		live_theirs_locked((uintptr_t)p, (uintptr_t)p + new_len);
	live_unlock_said();
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
	if (ns_live.n)
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
	int rc;

	/* The table's lock across the call, as munmap. */
	if (ns_live.n == 0 || ns_sandboxed() || !live_lock())
		return (int)os_shmdt(addr);
	rc = (int)os_shmdt(addr);
	if (rc == 0)
		live_drop_attach_locked((uintptr_t)addr);
	live_unlock();
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
