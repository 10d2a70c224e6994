/*
 * Internal state shared by the shim's files. One struct of globals, one
 * struct of thread-local state; everything else is static in its file.
 */
#ifndef NUMASHIM_SHIM_H
#define NUMASHIM_SHIM_H

#include "policy/policy.h"
#include "shim/je.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define NS_EXPORT __attribute__((visibility("default")))
#define NS_LIKELY(x) __builtin_expect(!!(x), 1)
#define NS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NS_NOINLINE __attribute__((noinline))

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
 * Reserved (untouched until tagged) when numashim goes active, NULL before
 * and when it passes through: free() tests for NULL, realloc's checked path
 * is installed after it exists. No index mask: every block jemalloc hands
 * out lies below 2^47, and free() of any other pointer is already undefined
 * (jemalloc itself would fault on it), so the check saves an instruction on
 * every free.
 */
extern uint8_t *ns_tags NS_HIDDEN;

static inline uint8_t ns_tag_of(const void *p)
{
	return ns_tags[(uintptr_t)p >> NS_CHUNK_SHIFT];
}

/* jemalloc's oversize threshold while no large set uses it (shim/init.c). */
#define NS_OVERSIZE_OFF ((size_t)1 << 44)

/* Milliseconds of CLOCK_MONOTONIC_COARSE (the vDSO's, no system call: also
 * under a seccomp filter), for the statistics' period and the age of a
 * remote-free stack. */
static inline uint64_t ns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sightings on a new node before a scheduler-moved thread is rebound. */
#ifndef NS_SETTLE_SIGHTINGS
#define NS_SETTLE_SIGHTINGS 4
#endif

/* Per-thread state, initial-exec TLS: a read is one %fs-relative load. */
struct remote_batch;
struct ns_thread {
	uint8_t tag;        /* set+1 the thread allocates from; 0 = unbound */
	uint8_t busy;       /* inside a rebind: do not recurse */
	uint8_t callback;   /* activity callback registered */
	uint8_t exited;     /* past its start routine: never rebind again */
	uint8_t own_policy; /* set its own mempolicy: off our arenas */
	uint8_t seen;       /* set+1 of a new node seen lately (hysteresis) */
	uint8_t seen_count; /* further sightings of it in a row */
	uint8_t remote_failed; /* no explicit tcache for remote frees */
	uint8_t pend_set;   /* home set+1 of the blocks in pend; 0 none */
	uint16_t pend_n;    /* blocks in pend */
	int remote_tc;      /* explicit tcache id + 1 for remote frees; 0 none */
	struct remote_batch *pend;  /* remote frees not sent home yet (shim/remote.c) */
	struct remote_batch *spare; /* empty batches kept */
	uint32_t pend_bytes; /* the size of pend's blocks */
	uint16_t spare_n;   /* about how many spares */
	uint8_t remote_ending; /* past ns_remote_release: no list */
	uint8_t remote_keyed;  /* R.key set: ns_remote_release runs at its end */
	uint8_t draining;   /* inside ns_remote_tick */
	uint8_t stale_tick; /* its calls, for the look at other stacks */
	uint8_t congested;  /* home set+1 whose stack is full: no batching */
	uint8_t direct_set; /* home set+1 of the direct_n blocks below */
	uint16_t direct_n;  /* remote frees sent through jemalloc, not counted yet */
	int16_t set;
	int16_t slot;       /* arena slot within the set */
	uint8_t big_stack;  /* known to be large: may refresh the statistics */
	uint8_t started;    /* started through our pthread_create (trampoline) */
	uint8_t placed;     /* node+1 NUMASHIM_THREADS pinned it to; 0 none */
};
extern __thread struct ns_thread ns_self NS_HIDDEN;

struct ns_state {
	bool active;                 /* per-node arenas in use */
	bool mbind_ok;               /* cleared after the first mbind failure */
	bool jvm_numa;               /* a JVM with -XX:+UseNUMA: mappings are its */
	bool sandboxed;              /* a seccomp filter: no system call of ours (sandbox.c) */
	struct policy_config cfg;
	struct policy_topology topo;
	struct policy_plan plan;
};
extern struct ns_state ns NS_HIDDEN;

/* sandbox.c: a seccomp filter is in place; numashim's own system calls
 * stop for good. */
NS_HIDDEN void ns_sandbox_enter(void);
static inline bool ns_sandboxed(void)
{
	return __atomic_load_n(&ns.sandboxed, __ATOMIC_ACQUIRE);
}

/* malloc.c */
struct ns_dispatch {
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
};
extern struct ns_dispatch ns_dispatch NS_HIDDEN;
NS_HIDDEN void ns_dispatch_checked(void);

/* large.c: blocks >= NUMASHIM_INTERLEAVE_MIN come from one arena of the
 * interleaved set. min is SIZE_MAX and tag 0 while there is none. */
struct ns_large {
	size_t min;           /* blocks: the first size whose class reaches it */
	size_t map_min;       /* mappings (mmap, shm): the threshold itself,
			       * also without a large set (a one-node plan) */
	uint8_t tag;
	bool routed;          /* jemalloc's huge arena is the set's arena */
	int flags;            /* MALLOCX_ARENA(its arena) | MALLOCX_TCACHE_NONE */
};
extern struct ns_large ns_large NS_HIDDEN;
NS_HIDDEN int ns_large_init(void);
NS_HIDDEN void ns_large_route(void);
NS_HIDDEN void *ns_large_alloc(size_t n, size_t align, bool zero);
NS_HIDDEN void *ns_large_realloc(void *p, size_t n);
NS_HIDDEN void ns_large_free(void *p);

/* Counters of placement decisions, read by the stats segment. Relaxed
 * atomics: none of them is on the allocation fast path. */
enum ns_left_reason {
	NS_LEFT_FILE, NS_LEFT_FIXED, NS_LEFT_HUGETLB, NS_LEFT_STACK,
	NS_LEFT_SMALL, NS_LEFT_PROGRAM_POLICY, NS_LEFT_JVM_NUMA, NS_LEFT_OFF,
	NS_LEFT_REASONS
};
struct ns_counters {
	uint64_t mmap_placed, mmap_placed_bytes;
	uint64_t mmap_left[NS_LEFT_REASONS];
	uint64_t shm_placed, shm_placed_bytes, shm_attached;
	uint64_t program_mbind, program_set_mempolicy;
	uint64_t threads_placed[POLICY_MAX_NODES];
	uint64_t remote_frees_set[POLICY_MAX_SETS]; /* by the block's home set */
};
extern struct ns_counters ns_count NS_HIDDEN;
#define NS_COUNT(field, n) __atomic_fetch_add(&ns_count.field, (n), __ATOMIC_RELAXED)

/* arena.c */
#define NS_RECENT 16
/* Arena indices of set s (up to max) and the threads bound to them. */
NS_HIDDEN int ns_arena_list(int s, unsigned *out, int max, int *threads);
/* The k-th of the last NS_RECENT extents set s got; false if none. */
NS_HIDDEN bool ns_arena_recent(int s, unsigned k, uintptr_t *addr, size_t *size);
/* Binds [addr, addr+len) the way set `set` places memory (mbind; weighted
 * runs for a weighted interleave set). Warns once if the kernel refuses. */
/* jemalloc's MALLOCX_ARENA_LIMIT, (1 << 12) - 1: it refuses an arena index
 * at or above it. */
#define NS_MAX_ARENAS 4095
/* shim/place.c: binding a set's memory. An extent of arena ind (whose
 * huge-page rotation starts at pos); whether the heap gets huge pages. */
NS_HIDDEN void ns_place_extent(void *addr, size_t len, int set, unsigned ind);
NS_HIDDEN void ns_place_arena_start(unsigned ind, unsigned long pos);
NS_HIDDEN void ns_place_huge(bool on);
NS_HIDDEN void ns_place_range(void *addr, size_t len, int set);
NS_HIDDEN int ns_place_range_whole(void *addr, size_t size, int set);
NS_HIDDEN bool ns_place_splits(int set); /* bound in runs, a VMA each */
NS_HIDDEN int ns_arenas_init(void);
NS_HIDDEN int ns_arena_pick(int set, bool may_create, int *slot, unsigned *arena);
/* Makes jemalloc's huge arena set s's, with our hooks; 0 and its index, or
 * an error when jemalloc's private state is not as expected. */
NS_HIDDEN int ns_arena_adopt_huge(int s, unsigned *ind);
NS_HIDDEN void ns_arena_route_large(size_t min);
NS_HIDDEN void ns_arena_release(int set, int slot);
/* A thread was just bound to arena ind (proves the phantom-thread layout). */
NS_HIDDEN void ns_arena_bound(unsigned ind);
NS_HIDDEN void ns_arena_fork_prepare(void);
NS_HIDDEN void ns_arena_fork_parent(void);
NS_HIDDEN void ns_arena_fork_child(void);
/* init.c: in every forked child, after the allocator's own handlers. */
NS_HIDDEN void ns_forked_child(void);

/* prof.c: libgcc's unwinder for jemalloc's heap profiler, when it is on. */
NS_HIDDEN void ns_prof_init(bool prof_on);

/* shim/init.c: what numashim will do in this process (the environment,
 * the topology, the plan), decided once, as numashim or jemalloc starts,
 * whichever is first; allocates nothing. */
NS_HIDDEN void ns_decide(void);
/* shim/je.c: jemalloc's options and start. */
NS_HIDDEN void ns_je_choose_narenas(int per_cpu, int nr_cpus);
/* Per-CPU arenas for a process numashim passes through (shim/je.c). */
NS_HIDDEN void ns_je_percpu(long possible_top); /* ns.topo.possible_top */
NS_HIDDEN bool ns_je_start(void);  /* true: jemalloc's profiler is on */
NS_HIDDEN void ns_je_ctl_start(void); /* before the first mallctl */
/* Sets the calling thread's activity callback; 0, or jemalloc's error. */
NS_HIDDEN int ns_je_set_activity(nsje_activity_fn fn, void *uctx);
NS_HIDDEN void ns_je_small_pages(bool on);
/* While on, jemalloc's mappings are made with ns_map_unlocked. */
NS_HIDDEN void ns_je_map_unlocked(bool on);
/* No other thread has ever run: a fork needs no allocator locks. */
NS_HIDDEN bool ns_fork_single(void);

/* stats.c: the shared-memory stats segment (stats/layout.h). */
NS_HIDDEN void ns_stats_init(void);
NS_HIDDEN void ns_stats_tick(void);      /* rate-limited update */
NS_HIDDEN bool ns_stats_enabled(void);   /* a segment is kept */
NS_HIDDEN void ns_stats_forked(void);    /* in the child after fork */
NS_HIDDEN void ns_stats_sandboxed(void); /* before a seccomp filter */
NS_HIDDEN void ns_stats_exit_now(void);  /* _exit: async-signal-safe */
/* shim/stats_collect.c: the segment's figures. */
struct ns_stats_node;
NS_HIDDEN void ns_stats_collect_init(void);
NS_HIDDEN void ns_stats_collect_forked(void);
NS_HIDDEN void ns_stats_collect(struct ns_stats_node *nodes);
typedef int (*ns_create_fn)(pthread_t *, const pthread_attr_t *,
			    void *(*)(void *), void *);
/* shim/stats_helper.c: the refresh helper thread, made with glibc's
 * pthread_create (`create`). Its CPUs and scheduling are taken at an
 * active process's start or fork (ns_helper_take_start), chosen in the
 * creating thread and applied by the helper itself. */
NS_HIDDEN void ns_stats_thread_start(ns_create_fn create);
NS_HIDDEN void ns_helper_take_start(void);
/* mmap.c: live bytes of the mappings placed per set. */
NS_HIDDEN void ns_mmap_forked(void);     /* in the child after fork */
NS_HIDDEN void ns_mmap_live(uint64_t bytes[POLICY_MAX_SETS],
			    uint64_t count[POLICY_MAX_SETS]);
/* mlockall(MCL_FUTURE) without MCL_ONFAULT in force: the kernel faults a
 * new mapping in inside mmap. ns_map_unlocked makes a writable one without
 * its pages (false: it could not, nothing mapped; *out may be MAP_FAILED),
 * ns_lock_populate locks it once placed (0 or mmap's errno). */
NS_HIDDEN bool ns_mcl_populates(void);
NS_HIDDEN void ns_mlock_forked(void);
NS_HIDDEN bool ns_map_unlocked(void *addr, size_t len, int prot, int flags,
			       int fd, off_t off, void **out);
/* gen: ns_mcl_gen() from before the mapping was made; a munlockall since
 * leaves it unlocked, as the kernel would have. */
NS_HIDDEN unsigned ns_mcl_gen(void);
NS_HIDDEN int ns_lock_populate(void *p, size_t len, unsigned gen);
/* The flags of an mmap to place that would fault it in (taken off, then
 * done by ns_populate once placed); *unlocked: make it ns_map_unlocked
 * (under mlockall(MCL_FUTURE), and for MAP_LOCKED). */
NS_HIDDEN int ns_early_flags(int flags, int prot, bool *unlocked);
NS_HIDDEN int ns_populate(void *p, size_t len, int prot, int early);

/* thread.c */
/* Registers the activity callback for the calling thread even when
 * numashim passes through (the stats segment is refreshed from it). */
NS_HIDDEN void ns_thread_watch(void);
NS_HIDDEN void ns_thread_bind(bool may_create);
NS_HIDDEN bool ns_thread_recheck(void);
NS_HIDDEN bool ns_thread_ensure_bound(void);
NS_HIDDEN void ns_free_foreign(void *p, uint8_t home);
/* shim/remote.c: the pthread key that ends a thread's remote frees and the
 * size of the blocks batched (from ns_thread_init); the thread's batch sent
 * home and its node's stack taken (from the activity callback); the end of
 * a thread's remote frees (its exit, or the key's destructor); the pool's
 * lock in a forked child. */
NS_HIDDEN void ns_remote_init(void);
NS_HIDDEN void ns_remote_tick(void);
NS_HIDDEN void ns_remote_release(void *unused);
NS_HIDDEN void ns_remote_forked(void);
NS_HIDDEN void ns_thread_init(void);
/* The main thread's stack (RLIMIT_STACK) is large enough for an inline
 * statistics refresh. */
NS_HIDDEN bool ns_main_stack_big(void);
/* The thread set (on) or cleared (off) a memory policy of its own. */
NS_HIDDEN void ns_thread_own_policy(bool on);
/* The next definition of `name` (glibc's, at `version` if versioned) into
 * *slot; 0 or -ENOENT. */
NS_HIDDEN int ns_resolve(void *slot, const char *name, const char *version);

/* What a thread made through our pthread_create starts with. */
struct ns_start {
	void *(*fn)(void *);
	void *arg;
	int node;    /* NUMASHIM_THREADS: the node it pins itself to; -1 none */
	int placed;  /* node+1 it is placed on (by either way); 0 none */
	bool big_stack;  /* may refresh the statistics inline */
	bool own_policy; /* the creator's: it set a memory policy of its own */
	cpu_set_t base;  /* the CPUs it would have had without numashim */
};

/* thread_place.c: NUMASHIM_THREADS placement. */
NS_HIDDEN void ns_place_init(void);
/* pthread_create under NUMASHIM_THREADS; s is freed on failure. */
NS_HIDDEN int ns_place_create(ns_create_fn create, pthread_t *th,
			      const pthread_attr_t *attr,
			      void *(*start)(void *), struct ns_start *s);
/* In the new thread, first thing. */
NS_HIDDEN void ns_place_started(const struct ns_start *s);
/* In a fork's child: numashim's own pin of the forking thread is undone. */
NS_HIDDEN void ns_place_forked(void);
/* Around posix_spawn, system and popen: a placed thread's pin undone
 * (true, the pin kept in *pin), then given back (shim/spawn.c). */
NS_HIDDEN bool ns_place_unpin(cpu_set_t *pin);
NS_HIDDEN void ns_place_repin(const cpu_set_t *pin);
/* The exec family's wrappers (shim/exec.c) look glibc's execvpe up. */
NS_HIDDEN void ns_exec_init(void);

#endif
