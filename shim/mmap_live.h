/* shim/mmap_live.c: the table of the mappings numashim placed, for
 * shim/mmap.c. */
#ifndef NUMASHIM_SHIM_MMAP_LIVE_H
#define NUMASHIM_SHIM_MMAP_LIVE_H

#include "shim/shim.h"

/* split: bound in runs; theirs: the program set a policy on it since;
 * shm: the address of the System V attach it is part of (0 if none). */
struct live { uintptr_t start, end, shm; int set; bool split, theirs; };

struct ns_live_table {
	int lock;
	int n, cap;
	struct live *m;
	bool full;    /* an entry was dropped: the figures undercount */
};
extern struct ns_live_table ns_live NS_HIDDEN;

/* live_lock: false when this thread may not update the table now (it is
 * in it already, from a signal handler; or the holder is not one of this
 * process's threads). live_unlock_said also says once that it is full. */
NS_HIDDEN bool live_lock(void);
NS_HIDDEN void live_unlock(void);
NS_HIDDEN void live_unlock_said(void);
NS_HIDDEN void live_add(void *p, size_t len, int set, bool split, uintptr_t shm);
NS_HIDDEN void live_remove(uintptr_t a, uintptr_t b);
NS_HIDDEN bool live_at(uintptr_t addr, struct live *e);
NS_HIDDEN void live_theirs(uintptr_t a, uintptr_t b);
/* The same, with the lock held: munmap, mremap and shmdt hold it across
 * their system call, so that no other thread's mapping made at the address
 * they free is added before their entries go (and is then taken for
 * theirs). */
NS_HIDDEN void live_add_locked(void *p, size_t len, int set, bool split,
			       uintptr_t shm);
NS_HIDDEN void live_remove_locked(uintptr_t a, uintptr_t b);
NS_HIDDEN bool live_at_locked(uintptr_t addr, struct live *e);
NS_HIDDEN void live_theirs_locked(uintptr_t a, uintptr_t b);
NS_HIDDEN void live_drop_attach_locked(uintptr_t addr);

#endif
