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

#include <numaif.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define MPOL_MODE(m) ((m) & 0xff) /* without MPOL_F_* mode flags */

/* ------------------------------------------------ live placed mappings */

/*
 * The mappings we placed, for the stats segment's mmap band. A try-lock,
 * never a wait: munmap may come from a signal handler that interrupted
 * this very thread inside the table. Missing an update only makes the
 * live figure approximate; the table never blocks a call.
 */
#define LIVE_MAX 512

static struct {
	int lock;
	int n;
	struct { uintptr_t start, end; int set; } m[LIVE_MAX];
} L;

static bool live_lock(void)
{
	for (int i = 0; i < 1000; i++)
		if (!__atomic_exchange_n(&L.lock, 1, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

static void live_unlock(void)
{
	__atomic_store_n(&L.lock, 0, __ATOMIC_RELEASE);
}

/* In a fork's child: another thread of the parent may have held the lock
 * (the stats helper reading the table); no one holds it in the child. */
void ns_mmap_forked(void)
{
	/* Read first: a write would copy the page the fork shared. */
	if (__atomic_load_n(&L.lock, __ATOMIC_RELAXED))
		live_unlock();
}

static void live_add(void *p, size_t len, int set)
{
	if (!live_lock())
		return;
	if (L.n < LIVE_MAX) {
		L.m[L.n].start = (uintptr_t)p;
		L.m[L.n].end = (uintptr_t)p + len;
		L.m[L.n].set = set;
		L.n++;
	}
	live_unlock();
}

/* Forget [a, b): whole entries go, overlapped ends are trimmed; a hole in
 * the middle keeps the lower part only when the table is full. */
static void live_remove(uintptr_t a, uintptr_t b)
{
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
			if (L.n < LIVE_MAX) {
				L.m[L.n].start = b;
				L.m[L.n].end = e;
				L.m[L.n].set = L.m[i].set;
				L.n++;
			}
		}
	}
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

/* Which set places a large mapping of the calling thread; -1: none. */
static int mapping_set(void)
{
	if (ns.plan.mmap == POLICY_MMAP_INTERLEAVE)
		return ns.plan.large_set;
	if (ns_self.tag)
		return ns_self.set;
	return ns.plan.large_set < 0 ? -1
		: policy_set_for_cpu(&ns.plan, os_getcpu());
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
	if (len < ns_large.min || ns_large.tag == 0)
		return NS_LEFT_SMALL;
	if (ns_self.own_policy)
		return NS_LEFT_PROGRAM_POLICY;
	if (ns.jvm_numa)
		return NS_LEFT_JVM_NUMA;
	if (ns.plan.mmap == POLICY_MMAP_OFF || mapping_set() < 0)
		return NS_LEFT_OFF;
	return -1;
}

NS_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	void *p = os_mmap(addr, len, prot, flags, fd, off);
	int why;

	if (p == MAP_FAILED || !ns.active)
		return p;
	why = leave_reason(len, flags, (flags & MAP_ANONYMOUS) != 0);
	if (why >= 0) {
		NS_COUNT(mmap_left[why], 1);
		return p;
	}
	ns_place_range(p, len, mapping_set());
	live_add(p, len, mapping_set());
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

NS_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags,
		       ...)
{
	void *new_addr = NULL;

	if (flags & MREMAP_FIXED) {
		__builtin_va_list ap;

		__builtin_va_start(ap, flags);
		new_addr = __builtin_va_arg(ap, void *);
		__builtin_va_end(ap);
	}
	{
		void *p = os_mremap(old, old_len, new_len, flags, new_addr);
		int set = -1;

		if (p == MAP_FAILED || L.n == 0)
			return p;
		/* The moved or resized range keeps its set. */
		if (live_lock()) {
			for (int i = 0; i < L.n && set < 0; i++)
				if ((uintptr_t)old >= L.m[i].start &&
				    (uintptr_t)old < L.m[i].end)
					set = L.m[i].set;
			live_unlock();
		}
		if (set >= 0) {
			live_remove((uintptr_t)old, (uintptr_t)old + old_len);
			live_add(p, new_len, set);
		}
		return p;
	}
}

/* A shm segment's policy is shared by every process that attaches it:
 * place it only when this attach is the first (the creator's). */
NS_EXPORT void *shmat(int id, const void *addr, int flags)
{
	void *p = os_shmat(id, addr, flags);
	size_t size;
	unsigned long nattch;
	int why;

	if (p == (void *)-1 || !ns.active || os_shm_info(id, &size, &nattch))
		return p;
	why = leave_reason(size, 0, true);
	if (why >= 0) {
		NS_COUNT(mmap_left[why], 1);
		return p;
	}
	if (nattch != 1) {
		NS_COUNT(shm_attached, 1);
		return p;
	}
	ns_place_range(p, size, mapping_set());
	live_add(p, size, mapping_set());
	NS_COUNT(shm_placed, 1);
	NS_COUNT(shm_placed_bytes, size);
	return p;
}

NS_EXPORT int shmdt(const void *addr)
{
	int rc = (int)os_shmdt(addr);

	if (rc == 0 && L.n && live_lock()) {
		uintptr_t end = 0;

		for (int i = 0; i < L.n; i++)
			if (L.m[i].start == (uintptr_t)addr)
				end = L.m[i].end;
		live_unlock();
		if (end)
			live_remove((uintptr_t)addr, end);
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

	if (rc == 0)
		NS_COUNT(program_mbind, 1);
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
