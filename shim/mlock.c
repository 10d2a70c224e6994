/*
 * Page locking and the flags that fault a mapping in inside mmap
 * (MAP_POPULATE, MAP_LOCKED, mlockall(MCL_FUTURE)): numashim places a
 * mapping before its pages exist, then populates or locks it as the
 * kernel would have (shim/mmap.c makes the calls; shim/arena.c's extent
 * hook too).
 */
#include "shim/shim.h"
#include "shim/os.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * mlockall(MCL_FUTURE) in force: its MCL_FUTURE and MCL_ONFAULT bits, else
 * 0. The kernel then locks every new mapping inside mmap whatever flags
 * numashim takes off. With MCL_ONFAULT it faults nothing in, and none are
 * taken off: populating after the placement would undo MCL_ONFAULT (found
 * by a review). Without it, it faults the whole mapping in inside mmap,
 * before any placement; a mapping to place is then made unlocked
 * (ns_map_unlocked), placed, and locked (ns_populate with MAP_LOCKED), so
 * that it ends up as the kernel would leave it, with its pages where the
 * policy puts them. A raw mlockall system call is not seen.
 */
static int mcl_future;
/* The process that set it: a fork's child (or a _Fork's, a raw clone's)
 * has no future locking, which the kernel does not pass on (found by a
 * review: a child as nobody failed its mmaps over the lock limit). */
static pid_t mcl_pid;
/* Every mlockall and munlockall call; the last munlockall's. A mapping
 * made unlocked and locked once placed must not stay locked when
 * munlockall ran meanwhile (ns_lock_populate). */
static unsigned mcl_gen, mcl_unlock_gen;

NS_EXPORT int mlockall(int flags)
{
	int rc = (int)syscall(SYS_mlockall, flags);

	/* Each call sets the future locking anew, as the kernel does. */
	if (rc == 0) {
		__atomic_store_n(&mcl_pid, getpid(), __ATOMIC_RELAXED);
		__atomic_store_n(&mcl_future,
				 (flags & MCL_FUTURE)
					 ? flags & (MCL_FUTURE | MCL_ONFAULT)
					 : 0,
				 __ATOMIC_RELEASE);
		__atomic_add_fetch(&mcl_gen, 1, __ATOMIC_SEQ_CST);
	}
	return rc;
}

NS_EXPORT int munlockall(void)
{
	/* Marked before the call: a mapping locked once placed, by another
	 * thread, after the kernel's unlock, then sees the mark and unlocks
	 * itself (ns_lock_populate); one locked before it, the kernel
	 * unlocks. munlockall does not fail but for a bad system call. */
	__atomic_store_n(&mcl_future, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&mcl_unlock_gen,
			 __atomic_add_fetch(&mcl_gen, 1, __ATOMIC_SEQ_CST),
			 __ATOMIC_SEQ_CST);
	return (int)syscall(SYS_munlockall);
}

/* In a fork's child, from jemalloc's child handler: the kernel passed no
 * future locking on. The pid check below misses a child whose pid equals
 * its parent's (an init's child made in a new pid namespace). */
void ns_mlock_forked(void)
{
	__atomic_store_n(&mcl_future, 0, __ATOMIC_SEQ_CST);
}

/* This process's future locking (0 nearly always: no system call then). */
static int mcl_state(void)
{
	int mcl = __atomic_load_n(&mcl_future, __ATOMIC_SEQ_CST);

	if (mcl && __atomic_load_n(&mcl_pid, __ATOMIC_RELAXED) != getpid())
		return 0;
	return mcl;
}

bool ns_mcl_populates(void)
{
	return mcl_state() == MCL_FUTURE;
}

unsigned ns_mcl_gen(void)
{
	return __atomic_load_n(&mcl_gen, __ATOMIC_SEQ_CST);
}

/*
 * Under mlockall(MCL_FUTURE) without MCL_ONFAULT: a writable mapping
 * without its pages. A PROT_NONE mapping is locked but not faulted in;
 * unlocked, it can take its protection without being faulted in either
 * (mprotect faults in a locked mapping that becomes writable). The caller
 * places it, then locks it with ns_lock_populate. Returns false, with
 * nothing mapped, when that cannot be done (the caller makes the plain
 * call); otherwise true, *out the mapping or MAP_FAILED with the kernel's
 * errno, which the PROT_NONE mapping gets as the real one would (the lock
 * limit included).
 */
bool ns_map_unlocked(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off, void **out)
{
	int saved = errno;
	void *p;

	/* A private mapping that cannot be written gets zero pages: nothing
	 * to place. A shared one gets shmem pages, read or written. */
	if (!(prot & PROT_WRITE) && !(flags & MAP_SHARED))
		return false;
	/* MAP_LOCKED stays: the kernel refuses a lock over the limit (or
	 * without the right) before the mapping replaces anything, as the
	 * real call would; a PROT_NONE mapping is locked without its pages. */
	p = os_mmap(addr, len, PROT_NONE, flags & ~MAP_POPULATE, fd, off);
	if (p != MAP_FAILED &&
	    (munlock(p, len) != 0 || mprotect(p, len, prot) != 0)) {
		os_munmap(p, len);
		errno = saved;
		return false;
	}
	*out = p;
	return true;
}

/*
 * MAP_POPULATE (without MAP_NONBLOCK, which makes it a no-op) and
 * MAP_LOCKED fault the pages in inside mmap, before a policy set after it
 * could apply. A mapping to place is made without them, placed, then
 * populated. MAP_LOCKED on a mapping that gets pages of its own (writable,
 * or shared) goes as under mlockall(MCL_FUTURE) (mcl_future above): made
 * locked but PROT_NONE (ns_map_unlocked), so that the kernel refuses it
 * over RLIMIT_MEMLOCK (EAGAIN) or without the right (EPERM) before it
 * replaces anything, then unlocked, given its protection, placed and
 * locked (ns_lock_populate). Made unlocked and locked once placed, a
 * MAP_FIXED commit inside a placed mapping that the lock limit refused
 * was unmapped, and left a hole where the kernel leaves the old mapping
 * (found by a review). On another mapping (zero pages, or none)
 * MAP_LOCKED is left to the kernel. MAP_POPULATE is done with
 * MADV_POPULATE_* (best effort, as MAP_POPULATE is: a kernel before 5.14
 * has no such advice, and the pages come at their first touch, placed).
 */
int ns_early_flags(int flags, int prot, bool *unlocked)
{
	int mcl = mcl_state();
	bool own_pages = (prot & PROT_WRITE) || (flags & MAP_SHARED);

	*unlocked = false;
	if (own_pages && (mcl == MCL_FUTURE || (mcl == 0 && (flags & MAP_LOCKED)))) {
		*unlocked = true;
		return MAP_LOCKED | (flags & MAP_POPULATE);
	}
	if (mcl != 0 || (flags & MAP_LOCKED))
		return 0;
	return (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE ? MAP_POPULATE : 0;
}

/* 0, or the errno the kernel's mmap would have failed with. */
int ns_populate(void *p, size_t len, int prot, int early)
{
	int saved = errno, err = 0;

	if (early & MAP_LOCKED) {
		if (mlock2(p, len, MLOCK_ONFAULT) != 0)
			err = errno == ENOMEM ? EAGAIN : errno;
		else
			(void)mlock(p, len);
	} else {
		madvise(p, len, (prot & PROT_WRITE) ? MADV_POPULATE_WRITE
						    : MADV_POPULATE_READ);
	}
	errno = saved;
	return err;
}

int ns_lock_populate(void *p, size_t len, unsigned gen)
{
	int err = ns_populate(p, len, PROT_WRITE, MAP_LOCKED);

	/* munlockall, the last call since gen: the kernel would have unlocked
	 * this mapping with all the others. */
	if (err == 0 && ns_mcl_gen() != gen &&
	    __atomic_load_n(&mcl_unlock_gen, __ATOMIC_SEQ_CST) == ns_mcl_gen())
		munlock(p, len);
	return err;
}
