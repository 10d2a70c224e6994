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

NS_HIDDEN bool live_lock(void);
NS_HIDDEN void live_unlock(void);
NS_HIDDEN void live_add(void *p, size_t len, int set, bool split, uintptr_t shm);
NS_HIDDEN void live_remove(uintptr_t a, uintptr_t b);
NS_HIDDEN bool live_at(uintptr_t addr, struct live *e);
NS_HIDDEN void live_theirs(uintptr_t a, uintptr_t b);
NS_HIDDEN void live_drop_attach(uintptr_t addr);

#endif
