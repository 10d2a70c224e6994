/*
 * Per-node arena sets: jemalloc arenas made with arenas.create and our
 * extent hooks, which bind every new extent to its set's node (mbind before
 * any page is touched) and record its owner in the tag map.
 *
 * A set holds up to NUMASHIM_ARENAS_PER_CPU (default 1) arenas per CPU of
 * its node, because one arena per node makes a node's threads contend on
 * its locks: a one-arena-per-node prototype was 3.8x slower than plain
 * jemalloc on a two-thread malloc/free loop (shared/NOTES.md). Not
 * jemalloc's 4 per CPU: that would be 4 per CPU *per node*, and a thread
 * that moves between nodes leaves a heap in an arena of each (dirty pages
 * only its own later returns would reuse). With 4, the emulated 2-node
 * benchmarks peaked at 1.28-1.65x plain jemalloc's RSS (service, larson,
 * xmalloc); with 1, at 0.74-0.98x, and no slower (bench/history/).
 * Arenas are created lazily, one when the set first gets a thread, more as
 * threads arrive, so a process with few threads stays small.
 */
#include "shim/shim.h"
#include "shim/log.h"
#include "shim/os.h"

#include <errno.h>
#include <limits.h>
#include <numaif.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define NS_MAX_PER_SET 64

uint8_t *ns_tags;

struct arena_set {
	int nr, cap;
	unsigned arena[NS_MAX_PER_SET];
	int threads[NS_MAX_PER_SET];
};

static struct {
	pthread_mutex_t lock;             /* arena creation and thread counts */
	extent_hooks_t *dflt;             /* arena 0's (jemalloc's) hooks */
	extent_hooks_t hooks;             /* ours: dflt with alloc/dalloc/destroy/commit */
	uint8_t arena_tag[NS_MAX_ARENAS]; /* arena index -> set + 1 */
	struct arena_set set[POLICY_MAX_SETS];
	/* The last extents each set got, for the stats sampler. Written by
	 * the hook without a lock: a torn entry only samples a wrong page. */
	struct { uintptr_t addr; size_t size; } recent[POLICY_MAX_SETS][NS_RECENT];
	unsigned recent_next[POLICY_MAX_SETS];
} A = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * The tag map is reserved read-only, and a page of it is made writable
 * when a tag first goes into it: mlockall(MCL_CURRENT) faults in and locks
 * every page of a writable mapping, and so locked the whole 64 MiB (a
 * process under 2 emulated nodes went from 18 MB of RSS passing through
 * to 85 MB; found by a review), where it maps a read-only one to the zero
 * page. A page of the map covers 8 GiB of address space (4 KiB pages): a
 * process opens one or two. One bit per page says it is open.
 */
#define MAP_OPEN_WORDS 256 /* bits for 16384 pages: 64 MiB of 4 KiB ones */
static uint64_t map_open[MAP_OPEN_WORDS];
static size_t map_page; /* the system's page size (ns_arenas_init) */
static int map_open_warned;

/* Whether the map's byte idx can be written; false when its page cannot
 * be opened (under a seccomp filter numashim makes no system call). */
static bool map_writable(size_t idx, bool open)
{
	size_t pg = idx / map_page;
	uint64_t bit = (uint64_t)1 << (pg % 64), *w = &map_open[pg / 64];
	int rc;

	if (__atomic_load_n(w, __ATOMIC_ACQUIRE) & bit)
		return true;
	if (!open || ns_sandboxed())
		return false;
	rc = os_writable(ns_tags + pg * map_page, map_page);
	if (rc) { /* out of mappings (vm.max_map_count), say */
		ns_log_once(&map_open_warned, "opening a page of the tag map", rc,
			    "blocks of the heap there are freed as the freeing "
			    "thread's, whatever their node");
		return false;
	}
	__atomic_fetch_or(w, bit, __ATOMIC_RELEASE);
	return true;
}

static void tag_range(void *addr, size_t size, uint8_t tag, bool whole_only)
{
	uintptr_t lo = (uintptr_t)addr, hi = lo + size;

	if (whole_only) {
		/* Clear only chunks the range covers entirely: a neighbour
		 * extent may still live in a partly covered one. */
		lo = (lo + NS_CHUNK - 1) & ~(NS_CHUNK - 1);
		hi &= ~(NS_CHUNK - 1);
	}
	/* A page never opened holds no tag: nothing to clear there. An
	 * extent whose page cannot be opened stays untagged, as jemalloc's
	 * own arenas' are: its blocks are freed as this thread's. */
	for (uintptr_t c = lo & ~(NS_CHUNK - 1); c < hi; c += NS_CHUNK)
		if (map_writable(c >> NS_CHUNK_SHIFT, tag != 0))
			ns_tags[c >> NS_CHUNK_SHIFT] = tag;
}

/* The set + 1 of arena ind's extents (0: not one of numashim's). */
static uint8_t tag_of(unsigned ind)
{
	return ind < NS_MAX_ARENAS ? A.arena_tag[ind] : 0;
}

static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size,
			size_t align, bool *zero, bool *commit, unsigned ind)
{
	uint8_t tag = tag_of(ind);
	/* Under mlockall(MCL_FUTURE) the kernel would fault the extent in
	 * inside mmap, before the placement: it is mapped unlocked, placed,
	 * then locked (shim/mmap.c). */
	unsigned gen = ns_mcl_gen(); /* before the state it is a snapshot for */
	bool lock = tag != 0 && ns_mcl_populates();
	void *p;

	/* 2 MiB-aligned starts keep each tag-map chunk to one set. */
	if (new_addr == NULL && align < NS_CHUNK)
		align = NS_CHUNK;
	if (NS_UNLIKELY(lock))
		ns_je_map_unlocked(true);
	p = A.dflt->alloc(A.dflt, new_addr, size, align, zero, commit, ind);
	if (NS_UNLIKELY(lock))
		ns_je_map_unlocked(false);
	if (p == NULL || tag == 0)
		return p;
	ns_place_extent(p, size, tag - 1, ind);
	if (NS_UNLIKELY(lock) && ns_lock_populate(p, size, gen) != 0) {
		/* Over the lock limit: the kernel's mmap would have failed. */
		os_munmap(p, size);
		return NULL;
	}
	tag_range(p, size, tag, false);
	{
		unsigned i = __atomic_fetch_add(&A.recent_next[tag - 1], 1,
						__ATOMIC_RELAXED) % NS_RECENT;

		A.recent[tag - 1][i].addr = (uintptr_t)p;
		A.recent[tag - 1][i].size = size;
	}
	return p;
}

static bool hook_dalloc(extent_hooks_t *h, void *addr, size_t size,
			bool committed, unsigned ind)
{
	bool kept = A.dflt->dalloc(A.dflt, addr, size, committed, ind);

	if (!kept)
		tag_range(addr, size, 0, true);
	return kept;
}

static void hook_destroy(extent_hooks_t *h, void *addr, size_t size,
			 bool committed, unsigned ind)
{
	A.dflt->destroy(A.dflt, addr, size, committed, ind);
	tag_range(addr, size, 0, true);
}

/*
 * Under vm.overcommit_memory=2 jemalloc maps extents without access and
 * commits them later with mmap(MAP_FIXED) over the range, which drops the
 * policy the alloc hook bound: every block of numashim's arenas ended up
 * with the default policy (found by a review). A committed range is bound
 * again. (With overcommit, jemalloc never decommits: no cost then.)
 */
static bool hook_commit(extent_hooks_t *h, void *addr, size_t size,
			size_t offset, size_t length, unsigned ind)
{
	uint8_t tag = tag_of(ind);
	bool failed = A.dflt->commit(A.dflt, addr, size, offset, length, ind);

	if (!failed && tag != 0)
		ns_place_extent((char *)addr + offset, length, tag - 1, ind);
	return failed;
}

/* Read once, at start: a process started under THP "never" keeps page by
 * page interleave even if "always" is set later. */
static bool heap_gets_huge_pages(void)
{
	const char *thp = NULL;
	size_t sz = sizeof(thp);
	int mode = os_thp_mode();

	if (mode == 0 &&
	    nsje_mallctl("opt.thp", &thp, &sz, NULL, 0) == 0 && thp)
		return strcmp(thp, "always") == 0; /* jemalloc madvises */
	return mode > 0;
}

/*
 * Every node set needs an arena index of its own beyond jemalloc's
 * automatic arenas and its huge arena (the large set's). With MALLOC_CONF's
 * narenas near jemalloc's limit there are none left: numashim then passed
 * for active while every thread stayed on an automatic arena (narenas:4094),
 * or on another node's arena (4093). It says so and passes through.
 */
static bool room_for_sets(void)
{
	int sets = ns.plan.nr_sets - (ns.plan.large_set >= 0 ? 1 : 0);
	unsigned used = 0, opt = 0;
	size_t sz = sizeof(used);
	char num[24];

	if (nsje_mallctl("arenas.narenas", &used, &sz, NULL, 0) ||
	    used + (unsigned)sets <= NS_MAX_ARENAS)
		return true;
	sz = sizeof(opt);
	nsje_mallctl("opt.narenas", &opt, &sz, NULL, 0);
	policy_format_u64(opt, num);
	ns_log_bad_input(NULL, "jemalloc option narenas", num,
			 "leaves too few of jemalloc's 4095 arena indices for "
			 "an arena per node", "plain jemalloc (numashim passes "
			 "through)");
	return false;
}

int ns_arenas_init(void)
{
	size_t sz = sizeof(A.dflt);
	const size_t map_len = (size_t)1 << (NS_TAG_BITS - NS_CHUNK_SHIFT);
	bool interleaved = false;
	uint8_t *map;

	if (!room_for_sets())
		return -ENOSPC;
	if (nsje_mallctl("arena.0.extent_hooks", &A.dflt, &sz, NULL, 0) ||
	    A.dflt == NULL)
		return -ENOTSUP;
	A.hooks = *A.dflt;
	A.hooks.alloc = hook_alloc;
	A.hooks.dalloc = hook_dalloc;
	A.hooks.destroy = hook_destroy;
	if (A.dflt->commit != NULL)
		A.hooks.commit = hook_commit;

	/* One byte per 2 MiB of address space, 64 MiB in all, of which a
	 * process touches a page or two: on small pages, or each touched
	 * byte would cost a 2 MiB huge page under THP "always". */
	map_page = (size_t)sysconf(_SC_PAGESIZE);
	if (map_page < 4096 || map_page & (map_page - 1) ||
	    map_len / map_page > 64 * MAP_OPEN_WORDS)
		return -ENOTSUP;
	map = os_reserve(map_len);
	if (map == NULL)
		return -ENOMEM;
	os_nohugepage(map, map_len);
	__atomic_store_n(&ns_tags, map, __ATOMIC_RELEASE);

	for (int s = 0; s < ns.plan.nr_sets; s++) {
		int cap = ns.cfg.arenas_per_cpu * ns.plan.set[s].cpus;

		A.set[s].cap = cap < 1 ? 1 : cap > NS_MAX_PER_SET ? NS_MAX_PER_SET : cap;
		if (s != ns.plan.large_set &&
		    ns.plan.set[s].mpol == POLICY_MPOL_INTERLEAVE)
			interleaved = true;
	}
	/* Once, not once per interleaved set: it reads sysfs. */
	ns_place_huge(interleaved && heap_gets_huge_pages());
	return 0;
}

/*
 * jemalloc 5.3 purges an arena completely (every dirty page: hundreds of
 * madvise calls and TLB shootdowns) when the last thread bound to it moves
 * to another arena (arena_migrate). Every rebind of a migrated thread would
 * do that to the arena it leaves: on an emulated 2-node box this made the
 * "service" benchmark 1.3-1.5x slower. There is no option to stop it, so
 * each arena we create gets one phantom thread that never leaves: the
 * first field of jemalloc 5.3's arena_t is its thread count.
 *
 * That is jemalloc's private layout, so it is proven before it is used: a
 * new arena's field must read 0, and after the first thread is bound to
 * the first arena (ns_arena_bound) it must read 1. Only then does that
 * arena, and every later one, get its phantom. (Asking jemalloc through
 * stats.arenas.N.nthreads instead needs an "epoch" merge of every arena's
 * statistics: about 0.5 M instructions each, per process.)
 */
extern void *je_arenas[]; /* jemalloc's arena table (atomic pointers) */

static struct {
	int state;          /* 0 unproven, 1 proven, -1 broken: never again */
	unsigned first;     /* the arena whose first bind proves it */
	bool waiting;
	uint64_t held[(NS_MAX_ARENAS + 63) / 64]; /* arenas with a phantom */
} H;

static void add_phantom(unsigned ind, unsigned *count)
{
	__atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
	H.held[ind / 64] |= 1ULL << (ind % 64);
}

static unsigned *arena_count(unsigned ind)
{
	if (ind >= NS_MAX_ARENAS)
		return NULL;
	return __atomic_load_n((unsigned **)&je_arenas[ind], __ATOMIC_ACQUIRE);
}

static void hold_arena(unsigned ind)
{
	unsigned *count = arena_count(ind);

	if (H.state < 0)
		return;
	if (count == NULL || __atomic_load_n(count, __ATOMIC_RELAXED) != 0) {
		H.state = -1;
		return;
	}
	if (H.state == 1) {
		add_phantom(ind, count);
	} else if (!H.waiting) {
		H.first = ind;
		H.waiting = true;
	}
}

void ns_arena_bound(unsigned ind)
{
	unsigned *count;

	if (!H.waiting || ind != H.first)
		return;
	pthread_mutex_lock(&A.lock);
	count = arena_count(ind);
	if (H.waiting && count && __atomic_load_n(count, __ATOMIC_RELAXED) >= 1) {
		add_phantom(ind, count);
		H.state = 1;
	} else if (H.waiting) {
		H.state = -1;
	}
	H.waiting = false;
	pthread_mutex_unlock(&A.lock);
}

/* Set (before the threshold is lowered) once large blocks are routed. */
static bool routed;

/* A new arena takes jemalloc's oversize threshold as the size from which it
 * purges a freed extent at once instead of letting it decay. Once large
 * blocks are routed that threshold is NUMASHIM_INTERLEAVE_MIN, and a node
 * arena would purge every dirty run of coalesced slabs that big: it keeps
 * decaying them, as before routing. Only then: otherwise the arena has
 * numashim's threshold already, or the user's (MALLOC_CONF), which it
 * keeps as every other arena does (it got numashim's, found by a
 * review). */
static void keep_decaying(unsigned ind)
{
	static size_t mib[3], miblen;
	size_t off = NS_OVERSIZE_OFF;

	if (!__atomic_load_n(&routed, __ATOMIC_ACQUIRE))
		return;
	if (miblen == 0) {
		size_t n = 3;

		if (nsje_mallctlnametomib("arena.0.oversize_threshold", mib, &n))
			return;
		miblen = n;
	}
	mib[1] = ind;
	nsje_mallctlbymib(mib, miblen, NULL, NULL, &off, sizeof(off));
}

/* Creates one more arena for set s; the caller holds A.lock. */
static int create_arena(int s)
{
	struct arena_set *as = &A.set[s];
	extent_hooks_t *hp = &A.hooks;
	unsigned ind, next;
	size_t sz = sizeof(next);
	int rc;

	/* arenas.create runs our alloc hook for the arena's metadata before
	 * it returns the index: tag the index it will get (the next one). */
	if (nsje_mallctl("arenas.narenas", &next, &sz, NULL, 0) == 0 &&
	    next < NS_MAX_ARENAS) {
		A.arena_tag[next] = (uint8_t)(s + 1);
		ns_place_arena_start(next, (unsigned long)as->nr);
	}
	sz = sizeof(ind);
	ns_je_small_pages(true); /* the arena's metadata (shim/je.c) */
	rc = nsje_mallctl("arenas.create", &ind, &sz, &hp, sizeof(hp));
	ns_je_small_pages(false);
	if (rc || ind >= NS_MAX_ARENAS)
		return -ENOMEM;
	A.arena_tag[ind] = (uint8_t)(s + 1);
	keep_decaying(ind);
	/* Threads bind to node arenas; the large set's arena is only ever
	 * named by mallocx, so no thread can leave it. */
	if (s != ns.plan.large_set)
		hold_arena(ind);
	as->arena[as->nr] = ind;
	as->threads[as->nr] = 0;
	return as->nr++;
}

/*
 * The large set's arena is jemalloc's "huge" arena: jemalloc 5.3 itself
 * sends every block of at least its oversize threshold there
 * (arena_choose_maybe_huge), so malloc needs no size check of ours. It
 * does so only for threads on "automatic" arenas, those below
 * manual_arena_base. Three private pieces of jemalloc are used, and each is
 * checked before anything changes:
 *  - the huge arena's index is opt.narenas (jemalloc reserves it at start
 *    because our compiled-in threshold is a valid one), and that arena must
 *    not exist yet: it is made here, bound to and given our hooks before it
 *    holds a single extent;
 *  - je_manual_arena_base must be that index + 1. Raised out of reach, the
 *    node arenas we create count as automatic. What jemalloc does only for
 *    manual arenas is bookkeeping for arena.reset/destroy (lists of full
 *    slabs and large extents), which numashim never calls, and it is
 *    skipped for our arenas from their first block on: the value changes
 *    before any of them exists;
 *  - je_oversize_threshold must read our option; the caller lowers it to
 *    NUMASHIM_INTERLEAVE_MIN once all this is done.
 * Returns 0, -EPERM when the user's jemalloc options set
 * oversize_threshold (then jemalloc routes by that threshold, to a huge
 * arena of its own, for the threads it places itself), or -ENOTSUP.
 */
extern unsigned je_manual_arena_base;

int ns_arena_adopt_huge(int s, unsigned *ind)
{
	extent_hooks_t *hp = &A.hooks;
	unsigned huge, old;
	size_t sz = sizeof(huge), mib[3], miblen = 3;
	int rc;

	/* MALLOC_CONF or /etc/malloc.conf chose a threshold of its own. */
	if (je_oversize_threshold != NS_OVERSIZE_OFF)
		return -EPERM;
	if (nsje_mallctl("opt.narenas", &huge, &sz, NULL, 0) ||
	    huge == 0 || huge + 1 >= NS_MAX_ARENAS ||
	    je_manual_arena_base != huge + 1 || arena_count(huge))
		return -ENOTSUP;
	pthread_mutex_lock(&A.lock);
	A.arena_tag[huge] = (uint8_t)(s + 1);
	ns_place_arena_start(huge, 0);
	sz = sizeof(old);
	ns_je_small_pages(true); /* jemalloc makes the arena: its metadata */
	rc = nsje_mallctl("thread.arena", &old, &sz, &huge, sizeof(huge));
	ns_je_small_pages(false);
	if (rc == 0) {
		rc = nsje_mallctlnametomib("arena.0.extent_hooks", mib, &miblen);
		mib[1] = huge;
		if (rc == 0)
			rc = nsje_mallctlbymib(mib, miblen, NULL, NULL, &hp,
					       sizeof(hp));
		nsje_mallctl("thread.arena", NULL, NULL, &old, sizeof(old));
	}
	if (rc == 0 && arena_count(huge)) {
		__atomic_store_n(&je_manual_arena_base, UINT_MAX, __ATOMIC_RELEASE);
		A.set[s].arena[0] = huge;
		A.set[s].threads[0] = 0;
		A.set[s].nr = 1;
		*ind = huge;
	} else {
		rc = -ENOTSUP;
	}
	pthread_mutex_unlock(&A.lock);
	return rc ? -ENOTSUP : 0;
}

/* Large blocks from now on go to the huge arena by jemalloc's own test. */
void ns_arena_route_large(size_t min)
{
	__atomic_store_n(&routed, true, __ATOMIC_RELEASE);
	__atomic_store_n(&je_oversize_threshold, min, __ATOMIC_RELEASE);
}

int ns_arena_pick(int s, bool may_create, int *slot, unsigned *arena)
{
	struct arena_set *as = &A.set[s];
	int best = -1;

	if (s < 0 || s >= ns.plan.nr_sets)
		return -EINVAL;
	pthread_mutex_lock(&A.lock);
	for (int i = 0; i < as->nr; i++)
		if (best < 0 || as->threads[i] < as->threads[best])
			best = i;
	/* A new arena when every existing one already has a thread, or when
	 * there is none at all (then even where creating is unwelcome). */
	if ((best < 0 || (as->threads[best] > 0 && may_create)) &&
	    as->nr < as->cap) {
		int made = create_arena(s);

		if (made >= 0)
			best = made;
		else
			as->cap = as->nr; /* not asked again at each thread */
	}
	if (best >= 0) {
		as->threads[best]++;
		*slot = best;
		*arena = as->arena[best];
	}
	pthread_mutex_unlock(&A.lock);
	return best >= 0 ? 0 : -ENOMEM;
}

void ns_arena_release(int s, int slot)
{
	if (s < 0 || s >= ns.plan.nr_sets || slot < 0)
		return;
	pthread_mutex_lock(&A.lock);
	if (slot < A.set[s].nr && A.set[s].threads[slot] > 0)
		A.set[s].threads[slot]--;
	pthread_mutex_unlock(&A.lock);
}

/* Around a fork that takes the allocator's locks (shim/je.c decides, and
 * calls these with jemalloc's own handlers): arena creation and the
 * thread counts. */
void ns_arena_fork_prepare(void)
{
	pthread_mutex_lock(&A.lock);
}

void ns_arena_fork_parent(void)
{
	pthread_mutex_unlock(&A.lock);
}

/* In the child, after jemalloc's own child handler (shim/je.c). */
void ns_arena_fork_child(void)
{
	/* Only the forking thread lives on: its binding is all that counts. */
	pthread_mutex_init(&A.lock, NULL);
	for (int s = 0; s < ns.plan.nr_sets; s++)
		for (int i = 0; i < A.set[s].nr; i++)
			A.set[s].threads[i] = 0;
	if (ns_self.tag)
		A.set[ns_self.set].threads[ns_self.slot]++;
	/* jemalloc has just set every arena's thread count to the forking
	 * thread's alone: the phantoms are given back. Without them a forked
	 * child's thread that moved to another node purged the arena it left
	 * (found by the concurrency review: 32 MiB of free pages in one
	 * madvise burst, tests/integration/fork.c "moves"). */
	for (unsigned w = 0; w < (NS_MAX_ARENAS + 63) / 64; w++)
		for (uint64_t b = H.held[w]; b; b &= b - 1) {
			unsigned ind = w * 64 + (unsigned)__builtin_ctzll(b);
			unsigned *count = arena_count(ind);

			if (count)
				__atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
		}
}

/* ------------------------------------------------------ for the stats */

int ns_arena_list(int s, unsigned *out, int max, int *threads)
{
	int n = 0;

	*threads = 0;
	if (s < 0 || s >= ns.plan.nr_sets)
		return 0;
	pthread_mutex_lock(&A.lock);
	for (int i = 0; i < A.set[s].nr && n < max; i++) {
		out[n++] = A.set[s].arena[i];
		*threads += A.set[s].threads[i];
	}
	pthread_mutex_unlock(&A.lock);
	return n;
}

bool ns_arena_recent(int s, unsigned k, uintptr_t *addr, size_t *size)
{
	if (s < 0 || s >= ns.plan.nr_sets || k >= NS_RECENT)
		return false;
	*addr = A.recent[s][k].addr;
	*size = A.recent[s][k].size;
	return *addr != 0 && *size != 0;
}
