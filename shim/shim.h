/*
 * Internal state shared by the shim's files. One struct of globals, one
 * struct of thread-local state; everything else is static in its file.
 */
#ifndef NUMASHIM_SHIM_H
#define NUMASHIM_SHIM_H

#include "policy/policy.h"
#include "shim/je.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define NS_EXPORT __attribute__((visibility("default")))
#define NS_LIKELY(x) __builtin_expect(!!(x), 1)
#define NS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * The tag map: one byte per 2 MiB of address space saying which arena set
 * owns the extent there (set index + 1; 0 = not ours: jemalloc's automatic
 * arenas, or not heap). Every extent our hooks hand to jemalloc starts on a
 * 2 MiB boundary, so a chunk never holds extents of two sets. A tag is only
 * a hint used to route frees: jemalloc's own rtree still decides where a
 * block goes, so a stale tag costs a slow free, never correctness.
 */
#define NS_CHUNK_SHIFT 21
#define NS_CHUNK ((uintptr_t)1 << NS_CHUNK_SHIFT)
#define NS_TAG_BITS 47 /* user address space on x86-64 (4-level paging) */

/*
 * Reserved (untouched until tagged) when numashim goes active; only read
 * through the tag-checking free/realloc, which are installed after it
 * exists. No index mask: every block jemalloc hands out lies below 2^47,
 * and free() of any other pointer is already undefined (jemalloc itself
 * would fault on it), so the check saves an instruction on every free.
 */
extern uint8_t *ns_tags NS_HIDDEN;

static inline uint8_t ns_tag_of(const void *p)
{
	return ns_tags[(uintptr_t)p >> NS_CHUNK_SHIFT];
}

/* Per-thread state, initial-exec TLS: a read is one %fs-relative load. */
struct ns_thread {
	uint8_t tag;        /* set+1 the thread allocates from; 0 = unbound */
	uint8_t busy;       /* inside a rebind: do not recurse */
	uint8_t callback;   /* activity callback registered */
	uint8_t exited;     /* past its start routine: never rebind again */
	int16_t set;
	int16_t slot;       /* arena slot within the set */
	uint64_t remote_frees;
};
extern __thread struct ns_thread ns_self NS_HIDDEN;

struct ns_state {
	bool active;                 /* per-node arenas in use */
	bool mbind_ok;               /* cleared after the first mbind failure */
	struct policy_config cfg;
	struct policy_topology topo;
	struct policy_plan plan;
};
extern struct ns_state ns NS_HIDDEN;

/* malloc.c */
struct ns_dispatch {
	void (*free)(void *);
	void *(*realloc)(void *, size_t);
};
extern struct ns_dispatch ns_dispatch NS_HIDDEN;
NS_HIDDEN void ns_dispatch_checked(void);

/* arena.c */
NS_HIDDEN int ns_arenas_init(void);
NS_HIDDEN int ns_arena_pick(int set, bool may_create, int *slot, unsigned *arena);
NS_HIDDEN void ns_arena_release(int set, int slot);
NS_HIDDEN void ns_arena_atfork_prepare(void);
NS_HIDDEN void ns_arena_atfork_parent(void);
NS_HIDDEN void ns_arena_atfork_child(void);

/* thread.c */
NS_HIDDEN void ns_thread_bind(bool may_create);
NS_HIDDEN bool ns_thread_recheck(void);
NS_HIDDEN void ns_free_foreign(void *p);
NS_HIDDEN void ns_thread_init(void);

#endif
