/*
 * numashim's side of its private jemalloc: the options compiled into it,
 * the system calls it makes (renamed to nsje_sys_* at build time,
 * shim/jemalloc.syms), and its start.
 */
#include "shim/shim.h"
#include "shim/os.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <unistd.h>

/*
 * jemalloc's compiled-in options (jemalloc reads them before /etc/malloc.conf
 * and MALLOC_CONF, which still override them). The oversize threshold is
 * set out of reach (16 TiB): no block goes to jemalloc's "huge" arena, which
 * purges on every free (the malloc-large benchmark ran at 5.1x glibc's time
 * with jemalloc's default, 0.4x without), but jemalloc still reserves the
 * huge arena's index, and with a large set numashim makes that arena the
 * set's and lowers the threshold to NUMASHIM_INTERLEAVE_MIN (shim/large.c):
 * jemalloc then routes big blocks there itself, with no check in malloc.
 * The same option is each arena's size from which a freed run of
 * coalesced pages is purged at once (jemalloc's default: 8 MiB); out of
 * reach, such runs grow until they decay, and jemalloc carves a request
 * only out of a free run at most 2^lg_extent_max_active_fit times its
 * size (default 6: 64 times). A churn of 20,000-byte blocks (2 threads,
 * 20 MB live) then mapped fresh memory every round: 2.4 GB of RSS in 5 s
 * against plain jemalloc's 132 MB, and 525 rounds against 567 (found by a
 * review). With 1,024 times (10) the free runs are reused: 27 MB and
 * 8,783 rounds; the benchmarks' workloads kept their RSS and time
 * (bench/history). ns_je_choose_narenas may append to them, in place.
 */
#define NS_JE_CONF "oversize_threshold:17592186044416,lg_extent_max_active_fit:10"
_Static_assert(NS_OVERSIZE_OFF == 17592186044416ULL, "the option above");
static char je_conf[sizeof(NS_JE_CONF) + 64] = NS_JE_CONF;
NS_HIDDEN const char *nsje_malloc_conf = je_conf;

extern unsigned je_narenas_auto; /* 0 until jemalloc has read its options */

/*
 * jemalloc's automatic arenas: 4 per CPU the process may run on, by
 * default. In an active process they serve only the threads numashim does
 * not bind (one with a memory policy of its own, one not made through
 * pthread_create) and the main thread until its binding: the others
 * allocate from the node sets' arenas. Yet each one costs every process at
 * its start, once anything calls mallctl (numashim does, to make its
 * arenas): jemalloc's ctl module then sets up an entry per arena index, a
 * page each. A trivial program under the shim took 165 page faults with
 * jemalloc's 8 arenas here and 1,211 with 1,024, the default on a 256-CPU
 * machine: 4 MiB and over a millisecond per process. And jemalloc caps
 * arena indices at 4095, which 4 per CPU reaches at 1,024 CPUs, leaving
 * no index for the node sets' arenas. So an active numashim asks for as
 * many per CPU as its sets hold at most (NUMASHIM_ARENAS_PER_CPU, 1 by
 * default; never more than jemalloc's 4), and no more than 1,024 in all.
 *
 * It asks with narenas_ratio, not narenas: jemalloc still gives a 1-CPU
 * process one arena, and still turns its percpu_arena option off when the
 * CPU count is not what it expects (both only when narenas is unset).
 * MALLOC_CONF's narenas or narenas_ratio, read later, win over it.
 *
 * jemalloc reads the string once, as it starts. Called from numashim's
 * constructor, or, when something started jemalloc before it (libstdc++'s
 * constructor allocates its exception pool; so may another preloaded
 * library's), from jemalloc's own start, through nsje_sys_readlink below.
 * The cap counts the CPUs the process may run on, as jemalloc does (the
 * machine's, nr_cpus, if that cannot be read).
 */
#define NS_NARENAS_MAX 1024

void ns_je_choose_narenas(int per_cpu, int nr_cpus)
{
	static const char key[] = ",narenas_ratio:";
	uint64_t milli = (uint64_t)(per_cpu < 4 ? per_cpu : 4) * 1000;
	char *end = je_conf + strlen(je_conf);
	int cpus = os_affinity_count();

	if (cpus < 1)
		cpus = nr_cpus;
	if (__atomic_load_n(&je_narenas_auto, __ATOMIC_RELAXED) != 0 ||
	    strstr(je_conf, key) != NULL || per_cpu < 1 || cpus < 1)
		return;
	if ((uint64_t)cpus * milli > (uint64_t)NS_NARENAS_MAX * 1000)
		milli = (uint64_t)NS_NARENAS_MAX * 1000 / (uint64_t)cpus;
	if (milli == 0)
		milli = 1;
	/* "K" or "K.mmm": jemalloc parses a fixed-point ratio. */
	memcpy(end, key, sizeof(key));
	end += strlen(end);
	end += policy_format_u64(milli / 1000, end);
	if (milli % 1000) {
		*end++ = '.';
		for (uint64_t d = 100; d > 0; d /= 10)
			*end++ = (char)('0' + milli / d % 10);
		*end = '\0';
	}
}

/*
 * A process numashim passes through (one node, or its own NUMA policy from
 * numactl) gets jemalloc's per-CPU arenas: a thread allocates from the
 * arena of the CPU it runs on. With one arena per thread round-robin
 * (jemalloc's default, 4 per CPU) larson ran 0.342 s against glibc's
 * 0.347; per CPU 0.307, and its peak RSS 7.3 MiB against 10.4 (service 44
 * against 54); xmalloc, service and threadtest within 3 % (medians of 8,
 * interleaved, this 2-CPU host; bench/history/2026-11-24.md section 17).
 * An active numashim binds every thread itself (per node, not per CPU).
 * A thread on CPU 0 allocates from arena 0, which must have the other
 * arenas' oversize threshold (nsje_sys_readlink): with jemalloc's 8 MiB
 * the malloc-large benchmark ran 18 times slower there (1.25 s against
 * 0.07 under taskset -c 0; bench/history/2026-11-25.md, section 1).
 *
 * Only where jemalloc would keep them: on a host whose CPUs are not all
 * online, or a process that may not run on all of them (taskset, a
 * cgroup's cpuset), jemalloc gives per-CPU arenas up at its start and
 * says so on stderr (os_cpus_all_ours). MALLOC_CONF's percpu_arena, read
 * later, wins.
 */
static const char percpu_opt[] = ",percpu_arena:percpu";
static long percpu_cpus; /* what os_cpus_all_ours counted; see below */

/* Whether jemalloc options s[0..len) set narenas or narenas_ratio: a key
 * at the start or after a comma (not a value that holds the word). */
static bool names_narenas(const char *s, size_t len)
{
	for (size_t i = 0; i + 7 <= len; i++)
		if ((i == 0 || s[i - 1] == ',') && memcmp(s + i, "narenas", 7) == 0)
			return true;
	return false;
}

void ns_je_percpu(long possible_top)
{
	/* jemalloc reads MALLOC_CONF with secure_getenv: a setuid
	 * program's is not its own. */
	const char *user = secure_getenv("MALLOC_CONF");

	if (__atomic_load_n(&je_narenas_auto, __ATOMIC_RELAXED) != 0 ||
	    strstr(je_conf, percpu_opt) != NULL ||
	    strlen(je_conf) + sizeof(percpu_opt) > sizeof(je_conf) ||
	    (user != NULL && names_narenas(user, strlen(user))) ||
	    (percpu_cpus = os_cpus_all_ours("", possible_top)) == 0)
		return;
	strcat(je_conf, percpu_opt);
}

/*
 * jemalloc's own check before it keeps per-CPU arenas asks glibc's
 * sysconf for the CPUs online and configured, which reads the two sysfs
 * files os_cpus_all_ours has just read: 61 us more per process start here
 * with per-CPU arenas than without (bench/spawn-time.sh's program, 873 ->
 * 934 us). The counts just found answer it; every other question, and
 * these two whenever numashim did not count them, goes to glibc.
 */
NS_HIDDEN long nsje_sys_sysconf(int name)
{
	long n = __atomic_load_n(&percpu_cpus, __ATOMIC_RELAXED);

	if (n > 0 && (name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF))
		return n;
	return sysconf(name);
}

/*
 * Per-CPU arenas raise jemalloc's arena count to the CPU count, whatever
 * the user's narenas or narenas_ratio says: MALLOC_CONF=narenas:1, the
 * usual cap on arena memory, gave one arena per CPU (found by a review).
 * So a user's arena count turns numashim's per-CPU arenas off: the
 * environment's is seen by ns_je_percpu, the /etc/malloc.conf link's
 * here, from the readlink hook, before jemalloc parses its options.
 */
static void percpu_off_if_narenas(const char *link, ssize_t len)
{
	char *at;

	if (len <= 0 || !names_narenas(link, (size_t)len) ||
	    (at = strstr(je_conf, percpu_opt)) == NULL)
		return;
	memmove(at, at + sizeof(percpu_opt) - 1,
		strlen(at + sizeof(percpu_opt) - 1) + 1);
}

/* ------------------------------------------------ jemalloc's own calls */

/* What jemalloc maps for a thread while set in it: MAP_SMALL_PAGES stays
 * off transparent huge pages (metadata only: ns_je_ctl_start, and the
 * creation of numashim's arenas); MAP_UNLOCKED is made without its pages
 * under mlockall(MCL_FUTURE), for hook_alloc to place and lock (shim/arena.c). */
enum { MAP_SMALL_PAGES = 1, MAP_UNLOCKED = 2 };
static __thread unsigned char map_how __attribute__((tls_model("initial-exec")));

void ns_je_small_pages(bool on)
{
	map_how = on ? map_how | MAP_SMALL_PAGES : map_how & ~MAP_SMALL_PAGES;
}

void ns_je_map_unlocked(bool on)
{
	map_how = on ? map_how | MAP_UNLOCKED : map_how & ~MAP_UNLOCKED;
}

NS_HIDDEN void *nsje_sys_mmap(void *addr, size_t len, int prot, int flags,
			      int fd, off_t off)
{
	void *p;

	if (NS_LIKELY(map_how == 0))
		return os_mmap(addr, len, prot, flags, fd, off);
	if (!(map_how & MAP_UNLOCKED) ||
	    !ns_map_unlocked(addr, len, prot, flags, fd, off, &p))
		p = os_mmap(addr, len, prot, flags, fd, off);
	if ((map_how & MAP_SMALL_PAGES) && p != MAP_FAILED)
		os_nohugepage(p, len);
	return p;
}

NS_HIDDEN int nsje_sys_munmap(void *addr, size_t len)
{
	return os_munmap(addr, len);
}

/*
 * jemalloc's fork handlers, which it registers through here (its
 * pthread_atfork call is renamed, shim/jemalloc.syms). Before a fork they
 * lock every mutex of every arena; after it they unlock them all in the
 * parent and set them up anew in the child. Those are writes to pages the
 * fork has just made copy-on-write: with the child still alive, each one
 * copies a page, in the parent and again in the child, and a child that
 * execs at once had no use for either. A single-threaded fork passing
 * through copied 12 pages in the parent and 13 in the child (2 emulated
 * nodes, with their arenas: 32 and 34), and took 300 us against glibc's
 * 190 (470 us).
 *
 * A process that has never had a second thread (glibc's
 * __libc_single_threaded, cleared by the first pthread_create, glibc's
 * own helpers' included, and never set again) has no lock another
 * thread could hold: the one thread is in fork(), not in the allocator.
 * So its forks skip the handlers, as glibc's fork skips its own malloc's
 * locks on the same test. (A fork from a signal handler that interrupted
 * malloc is undefined either way: with the handlers the thread deadlocks
 * on the lock it holds itself.) Threads made by a raw clone() are not
 * counted; they break glibc's own malloc too, which skips its locks on the
 * same flag. The decision is taken before the fork and kept for its two
 * halves, numashim's arena lock included (below).
 */
static void (*je_prepare)(void), (*je_parent)(void), (*je_child)(void);
/* The forking thread's: a prepare handler that made a thread which forks
 * could not flip the first fork's decision. arena_locked: numashim's arena
 * lock was taken with jemalloc's (it was active then). */
static __thread bool je_fork_skipped __attribute__((tls_model("initial-exec")));
static __thread bool arena_locked __attribute__((tls_model("initial-exec")));

bool ns_fork_single(void)
{
	return __atomic_load_n(&__libc_single_threaded, __ATOMIC_RELAXED);
}

/*
 * numashim's own fork work rides on jemalloc's handlers, the first a
 * process registers (jemalloc starts before any constructor of the
 * program's is done): prepare handlers run in the reverse order and child
 * handlers in the order of registration, so the arena lock is taken after
 * every other library's prepare handler and is free again, and the child
 * reset, before any other library's child handler runs. Registered from
 * numashim's constructor, a library's child handler that made a thread
 * (which binds to an arena) waited for ever on the lock (found by a
 * review). The arena lock comes before jemalloc's, as everywhere.
 */
static void je_fork_prepare(void)
{
	je_fork_skipped = ns_fork_single();
	if (je_fork_skipped)
		return;
	arena_locked = ns.active;
	if (arena_locked)
		ns_arena_fork_prepare();
	if (je_prepare)
		je_prepare();
}

/*
 * In the parent, its locks free again, the refresh is looked at as after
 * an allocation: a process that allocates little but forks (a PostgreSQL
 * postmaster forks a backend per connection and sleeps between) made no
 * stats segment, and `numashim stat` showed it with "no statistics yet"
 * for good. One clock read a fork otherwise.
 */
static void je_fork_parent(void)
{
	if (!je_fork_skipped) {
		if (je_parent)
			je_parent();
		if (arena_locked)
			ns_arena_fork_parent();
	}
	ns_stats_tick();
}

static void je_fork_child(void)
{
	if (!je_fork_skipped) {
		if (je_child)
			je_child();
		if (arena_locked)
			ns_arena_fork_child();
	}
	ns_forked_child();
}

/* Once, from jemalloc's start (it makes no other atfork call). */
NS_HIDDEN int nsje_sys_pthread_atfork(void (*prepare)(void),
				      void (*parent)(void),
				      void (*child)(void))
{
	je_parent = parent;
	je_child = child;
	__atomic_store_n(&je_prepare, prepare, __ATOMIC_RELEASE); /* registered */
	return pthread_atfork(je_fork_prepare, je_fork_parent, je_fork_child);
}

/*
 * pthread_atfork (libc_nonshared.a's, linked into every caller) registers
 * through __register_atfork. A program's own libraries run their
 * constructors before a preloaded library's: one that registered fork
 * handlers before any allocation got them ahead of jemalloc's, so its
 * prepare handler ran with every allocator lock held (one that allocates
 * deadlocked the fork) and its child handler before they were reset (a
 * thread it made to allocate hung the child; found by a review). The first
 * registration starts jemalloc, whose handlers then come first, as the
 * comment above the fork handlers says (je_prepare is set once they are
 * registered). glibc's is looked up by its version (ns_resolve): a .symver
 * reference would bind to this definition itself (our exports carry no
 * version), and the call would loop.
 */
typedef int register_atfork_fn(void (*)(void), void (*)(void),
			       void (*)(void), void *);

NS_EXPORT int __register_atfork(void (*prepare)(void), void (*parent)(void),
				void (*child)(void), void *dso)
{
	static register_atfork_fn *libc_register;
	register_atfork_fn *f;

	if (!__atomic_load_n(&je_prepare, __ATOMIC_ACQUIRE))
		nsje_dallocx(nsje_mallocx(1, 0), 0); /* jemalloc's start */
	f = __atomic_load_n(&libc_register, __ATOMIC_ACQUIRE);
	if (f == NULL) {
		if (ns_resolve(&libc_register, "__register_atfork", "GLIBC_2.3.2"))
			return ENOSYS;
		f = __atomic_load_n(&libc_register, __ATOMIC_ACQUIRE);
	}
	return f(prepare, parent, child, dso);
}

/*
 * jemalloc reads the /etc/malloc.conf link once, as it starts: after it
 * took the pointer to its compiled-in options, before it parses them for
 * good. The last moment to choose its arena count (ns_decide).
 *
 * It is also before jemalloc makes arena 0, which takes its oversize
 * threshold (the size from which a freed run of coalesced pages is purged
 * at once) from a global that jemalloc 5.3.0 sets from the option only
 * later, when it reserves the huge arena's index: arena 0 kept the
 * default 8 MiB whatever the option said (jemalloc issue #2809, fixed
 * upstream in PR #2905, not in Debian's 5.3.0). Every later arena takes
 * the option's value. So a program whose main thread (arena 0, passing
 * through) churned large blocks had each freed run of 8 MiB or more
 * purged and faulted in again: 418,000 page faults and 0.70 s for 4,000
 * blocks of 64 KiB-8 MiB, against 22,000 and 0.06 s on any other arena
 * (glibc: 237,000 and 0.42 s). numashim's own value is set here, for
 * arena 0 to take; ns_je_start gives arena 0 the option's value when
 * MALLOC_CONF or /etc/malloc.conf chose another.
 */
NS_HIDDEN ssize_t nsje_sys_readlink(const char *path, char *buf, size_t len)
{
	ssize_t n;

	ns_decide();
	je_oversize_threshold = NS_OVERSIZE_OFF; /* for arena 0: see above */
	n = os_readlink(path, buf, len);
	percpu_off_if_narenas(buf, n);
	return n;
}

/*
 * What numashim reads and sets in jemalloc without its ctl module.
 * jemalloc's mallctl interface starts that module on its first call, and
 * the module sets up an entry of some 24 KiB for every arena index (the
 * automatic ones and the merged statistics), zeroes the merged ones and
 * writes the first bytes of each. That is a page per arena, and the
 * memsets of the merged entries. A trivial program passing through here
 * (8 arenas) took 218 page faults and 2.4 MiB of RSS with it at start,
 * 173 and 2.1 without, and 1.21 ms from spawn to exit against 1.08
 * (glibc: 0.63); with 1,024 arenas (4 per CPU on a 256-CPU machine), 1,261
 * faults and 6.4 MiB against 178 and 2.1. A process numashim passes
 * through (a one-node machine, the common case) needs none of it until
 * its first statistics refresh, a second after its start
 * (shim/stats_collect.c), which a short-lived process never reaches.
 * So the start uses jemalloc's internals for its two needs instead:
 *  - whether the heap profiler is on: jemalloc's opt_prof;
 *  - installing the per-thread activity callback (ns_je_set_activity):
 *    the function behind experimental.thread.activity_callback, called
 *    directly with the calling thread's jemalloc TSD. The build makes
 *    that static function global (Makefile.am); it takes the mallctl
 *    arguments, sets two words of the TSD and takes no lock.
 * Four of jemalloc 5.3's internal names are used: je_opt_prof,
 * je_tsd_tls (the thread's TSD), je_tsd_fetch_slow and that function. A
 * jemalloc without them fails the link (-z defs). Their behaviour is the
 * archive's: a jemalloc built with --enable-debug asserts that
 * je_tsd_fetch_slow is not handed a ready TSD, which the release build
 * returns as it is (Debian's has no assertions). The TSD is fetched as
 * jemalloc's free fetches it (tsd_fetch_min): a ready one as it is, one
 * not yet set up in the minimal state a thread's first free gives it; the
 * callback survives the full set-up of its first malloc. A full set-up would
 * change what the thread does next: its first free, which jemalloc sends
 * back to the block's arena, would go into its cache, and its first
 * malloc would take that block back, next to its creator's blocks
 * (bench/cache-scratch passing through ran 2.6 times slower that way).
 */
extern bool je_opt_prof;
extern __thread char je_tsd_tls[] __attribute__((tls_model("initial-exec")));
void *je_tsd_fetch_slow(void *tsd, bool minimal);
int experimental_thread_activity_callback_ctl(void *tsd, const size_t *mib,
					      size_t miblen, void *oldp,
					      size_t *oldlenp, void *newp,
					      size_t newlen);

/* jemalloc and this thread's cache start here (a block allocated and
 * freed), as they would without numashim: their mappings are the
 * program's heap. The blocks that leaves in the cache are the automatic
 * arena's; an active numashim's binding flushes them (shim/thread.c,
 * bind_to). Once, from numashim's constructor. */
bool ns_je_start(void)
{
	void *p = nsje_mallocx(1, 0);

	if (p != NULL)
		nsje_dallocx(p, 0);
	/* The user's oversize threshold, for arena 0 as for the others (see
	 * nsje_sys_readlink). Only then: mallctl starts the ctl module, which
	 * a process numashim passes through would not start so early. */
	if (je_oversize_threshold != NS_OVERSIZE_OFF) {
		size_t v = je_oversize_threshold;

		ns_je_ctl_start();
		nsje_mallctl("arena.0.oversize_threshold", NULL, NULL, &v,
			     sizeof(v));
	}
	return je_opt_prof;
}

/*
 * Starts the ctl module, before the first mallctl: an active numashim's
 * setup (its arenas are made through it), or the first statistics
 * refresh. Under transparent huge pages "always" (the default of many
 * distributions), each 2 MiB the module's entries span would become a
 * huge page once one byte of it is written: a trivial program with 256
 * arenas had 16.8 MiB of RSS, 14 of them huge pages, against plain
 * jemalloc's 9.6 (1,024 arenas: 45.5). So its first call runs with what
 * jemalloc maps for this thread kept on small pages. The metadata blocks
 * mapped then keep that for what jemalloc puts in them later; entries of
 * arenas made later fit in them or in blocks of their own. Two threads
 * that come here at once both take the window: ctl's own lock orders
 * them.
 */
void ns_je_ctl_start(void)
{
	static bool started;
	bool prof;
	size_t len = sizeof(prof);
	int rc;

	if (__atomic_load_n(&started, __ATOMIC_ACQUIRE))
		return;
	ns_je_small_pages(true);
	rc = nsje_mallctl("opt.prof", &prof, &len, NULL, 0);
	ns_je_small_pages(false);
	if (rc == 0) /* else the module did not start: the next call tries */
		__atomic_store_n(&started, true, __ATOMIC_RELEASE);
}

int ns_je_set_activity(nsje_activity_fn fn, void *uctx)
{
	struct nsje_activity_thunk th = { fn, uctx };
	void *tsd = je_tsd_fetch_slow(je_tsd_tls, true);

	return experimental_thread_activity_callback_ctl(tsd, NULL, 0, NULL,
							 NULL, &th, sizeof(th));
}
