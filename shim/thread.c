/*
 * Threads: which arena set a thread allocates from, and keeping that
 * current when the scheduler moves the thread to another node.
 *
 * The allocation fast path is jemalloc's own malloc (nothing of ours runs
 * there), so the node is kept current out of it:
 *  - a thread is bound to an arena of its node when it starts (our
 *    pthread_create) and the main thread in the constructor;
 *  - a thread that pins itself (sched_setaffinity, pthread_setaffinity_np)
 *    is rebound as the call returns; one pinned by a direct system call
 *    (libnuma, taskset) at the next activity callback;
 *  - jemalloc's per-thread activity callback (about every 64 KiB allocated
 *    or freed) re-reads the CPU, and rebinds once the thread has been seen
 *    on the same new node NS_SETTLE_SIGHTINGS times in a row. A rebind is not free: it flushes
 *    the thread's tcache (blocks cached from the old node must not be
 *    handed out on the new one) and jemalloc purges an arena its last
 *    thread leaves. A thread the scheduler bounces between nodes for a
 *    moment must not pay that each time: on an emulated 2-node box, where
 *    every CPU change is a node change, rebinding at the first sight made
 *    the "service" benchmark 1.55x slower through purges alone.
 * Meanwhile the blocks of the old node it frees go home (origin-aware free),
 * so they are not handed out on the wrong node either (shim/remote.c).
 */
#include "shim/shim.h"
#include "shim/log.h"
#include "shim/os.h"

#include <dlfcn.h>
#include <numaif.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

__thread struct ns_thread ns_self __attribute__((tls_model("initial-exec")));

static struct {
	size_t arena_mib[2], flush_mib[3];
	size_t arena_miblen, flush_miblen;
	int (*real_create)(pthread_t *, const pthread_attr_t *,
			   void *(*)(void *), void *);
	int bind_warned, own_policy_warned, pick_warned;
	pthread_key_t exit_key;             /* see thread_exit */
	bool exit_key_ok;
	bool no_arena[POLICY_MAX_SETS];     /* its arena could not be made */
} T;

static void activity(void *uctx, uint64_t allocated, uint64_t deallocated);
static void thread_exit(void *unused);

void ns_thread_init(void)
{
	ns_remote_init();
	T.exit_key_ok = pthread_key_create(&T.exit_key, thread_exit) == 0;
	T.arena_miblen = 2;
	T.flush_miblen = 3;
	nsje_mallctlnametomib("thread.arena", T.arena_mib, &T.arena_miblen);
	nsje_mallctlnametomib("thread.tcache.flush", T.flush_mib, &T.flush_miblen);
	ns_place_init();
}

static bool no_arena(int set)
{
	return set < 0 || set >= POLICY_MAX_SETS ||
	       __atomic_load_n(&T.no_arena[set], __ATOMIC_RELAXED);
}

static void verbose_switch(int from, int to, int cpu)
{
	struct ns_line l;

	ns_line_init(&l);
	ns_line_str(&l, "thread moved to cpu ", 0);
	ns_line_long(&l, cpu);
	ns_line_str(&l, ": arena set ", 0);
	ns_line_long(&l, from);
	ns_line_str(&l, " -> ", 0);
	ns_line_long(&l, to);
	ns_line_emit(&l);
}

/* Binds the calling thread to an arena of set `set`; flush: empty its
 * cache (see below), unless it is a new thread that has cached nothing.
 * 0, or -errno with the thread's binding as it was. */
static int bind_to(int set, bool may_create, bool flush)
{
	unsigned arena;
	int slot, rc;
	bool was_bound = ns_self.tag != 0;

	if (no_arena(set))
		return -ENOMEM;
	/* A set whose first arena jemalloc would not make (out of memory,
	 * out of arena indices) is not asked again: each try is an
	 * arenas.create under the arena lock, and a thread on its node would
	 * try at every activity callback (found by a review: 35 tries). */
	rc = ns_arena_pick(set, may_create, &slot, &arena);
	if (rc) {
		__atomic_store_n(&T.no_arena[set], true, __ATOMIC_RELAXED);
		ns_log_once(&T.pick_warned, "making an arena for a node", -rc,
			    "its threads keep the arena they have");
		return rc;
	}
	rc = nsje_mallctlbymib(T.arena_mib, T.arena_miblen, NULL, NULL, &arena,
			       sizeof(arena));
	if (rc) {
		ns_arena_release(set, slot);
		ns_log_once(&T.bind_warned, "thread.arena", rc,
			    "threads keep jemalloc's default arenas");
		return -rc;
	}
	ns_arena_bound(arena);
	if (was_bound)
		ns_arena_release(ns_self.set, ns_self.slot);
	/* The thread cache may hold blocks of the arena the thread had: its
	 * previous set's, or, at the first binding, the automatic arena's
	 * (the main thread's: a library's constructor, numashim's start).
	 * Served again after the binding, those would be the wrong node's,
	 * and neighbours of other threads' blocks (false sharing). */
	if (was_bound || flush)
		nsje_mallctlbymib(T.flush_mib, T.flush_miblen, NULL, NULL, NULL, 0);
	ns_self.set = (int16_t)set;
	ns_self.slot = (int16_t)slot;
	ns_self.tag = (uint8_t)(set + 1);
	/* A thread that did not start in our trampoline (C11's thrd_create,
	 * a SIGEV_THREAD timer's, one from before numashim started) gives
	 * its slot back through a key's destructor (thread_exit). */
	if (!was_bound && !ns_self.started && T.exit_key_ok)
		pthread_setspecific(T.exit_key, (void *)1);
	ns_thread_watch();
	return 0;
}

static void bind_here(bool may_create, bool flush)
{
	if (!ns.active || ns_self.busy || ns_self.own_policy || ns_self.exited)
		return;
	ns_self.busy = 1;
	bind_to(policy_set_for_cpu(&ns.plan, os_getcpu()), may_create, flush);
	ns_self.busy = 0;
}

void ns_thread_bind(bool may_create)
{
	bind_here(may_create, true);
}

/* Not past ns_remote_release either: a thread not made through our
 * pthread_create ends there first (its key's destructor, after
 * jemalloc's own has ended the thread's jemalloc state). */
static bool may_bind(void)
{
	return ns.active && !ns_self.busy && !ns_self.exited &&
	       !ns_self.own_policy && !ns_self.remote_ending;
}

/* Binds a thread that is not bound yet (created before numashim started,
 * or not through pthread_create). True if it is bound now. */
bool ns_thread_ensure_bound(void)
{
	if (ns_self.tag == 0 && may_bind())
		ns_thread_bind(false);
	return ns_self.tag != 0;
}

/* True if the thread now allocates from set `set`; said when verbose. */
static bool rebind(int set, int cpu)
{
	int from = ns_self.set;
	bool done;

	ns_self.busy = 1;
	done = bind_to(set, false, true) == 0;
	if (done && ns.cfg.verbose >= 2)
		verbose_switch(from, set, cpu);
	ns_self.seen = 0;
	ns_self.seen_count = 0;
	ns_self.busy = 0;
	return done;
}

/* Re-reads the CPU; rebinds at once if the thread's node changed (the
 * thread pinned itself). True if rebound. */
bool ns_thread_recheck(void)
{
	int cpu, set;

	if (!may_bind())
		return false;
	if (ns_self.tag == 0)
		return ns_thread_ensure_bound();
	cpu = os_getcpu();
	set = policy_set_for_cpu(&ns.plan, cpu);
	if (set + 1 == ns_self.tag)
		return false;
	return rebind(set, cpu);
}

/* True when the thread may no longer run on any CPU of its bound set: it
 * was pinned away (libnuma's numa_run_on_node and taskset make the system
 * call themselves, past our sched_setaffinity). */
static bool pinned_away(void)
{
	cpu_set_t mask;

	if (sched_getaffinity(0, sizeof(mask), &mask))
		return false;
	for (int c = 0; c < ns.plan.nr_cpus && c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mask) && policy_set_for_cpu(&ns.plan, c) == ns_self.set)
			return false;
	return true;
}

/* From the activity callback: rebind once the thread has been seen on the
 * same new node NS_SETTLE_SIGHTINGS times in a row (each callback is about
 * 64 KiB of the thread's activity apart), or at once if it was pinned away
 * from its node (one sched_getaffinity, only when the node differs). */
static void recheck_settled(void)
{
	int cpu, set;

	if (!may_bind() || ns_self.tag == 0 || ns_sandboxed())
		return;
	cpu = os_getcpu();
	set = policy_set_for_cpu(&ns.plan, cpu);
	/* A set without an arena (bind_to) keeps the thread where it is, and
	 * so does a CPU the plan does not know (brought online since the
	 * start): its default set would be node 0's, whatever its node. */
	if (set + 1 == ns_self.tag || no_arena(set) ||
	    !policy_cpu_known(&ns.plan, cpu)) {
		ns_self.seen = 0;
		ns_self.seen_count = 0;
		return;
	}
	if (pinned_away()) {
		rebind(set, cpu);
		return;
	}
	if (ns_self.seen == set + 1) {
		if (++ns_self.seen_count >= NS_SETTLE_SIGHTINGS - 1)
			rebind(set, cpu);
		return;
	}
	ns_self.seen = (uint8_t)(set + 1);
	ns_self.seen_count = 0;
}

/*
 * A thread with a memory policy of its own allocates from jemalloc's first
 * automatic arena, whose extents we never mbind, so its pages follow its
 * policy at first touch; cleared, it returns to its node's arena set.
 */
void ns_thread_own_policy(bool on)
{
	unsigned zero = 0;

	if (!ns.active || ns_self.busy)
		return;
	/* Past thread_exit (a key's destructor that sets a policy): its slot
	 * is given back already, and must be neither taken nor given back
	 * again (found by a review: slots leaked, or a live thread's count
	 * fell). */
	if (ns_self.exited) {
		ns_self.own_policy = on;
		return;
	}
	if (!on) {
		if (ns_self.own_policy) {
			ns_self.own_policy = 0;
			ns_thread_bind(false);
		}
		return;
	}
	ns_self.busy = 1;
	/* jemalloc refuses arena 0 under MALLOC_CONF=percpu_arena (EPERM):
	 * the thread then stays on its node arena, bound as before, rather
	 * than allocate there while its frees take the remote path (found
	 * by a review). Said once. */
	if (nsje_mallctlbymib(T.arena_mib, T.arena_miblen, NULL, NULL, &zero,
			      sizeof(zero)) != 0) {
		ns_log_once(&T.own_policy_warned, "taking a thread with a memory "
			    "policy of its own off numashim's arenas",
			    EPERM, "it keeps its node's arena (MALLOC_CONF "
			    "percpu_arena?)");
		ns_self.busy = 0;
		return;
	}
	if (ns_self.tag)
		ns_arena_release(ns_self.set, ns_self.slot);
	nsje_mallctlbymib(T.flush_mib, T.flush_miblen, NULL, NULL, NULL, 0);
	ns_self.tag = 0;
	ns_self.own_policy = 1;
	ns_self.busy = 0;
}

static void activity(void *uctx, uint64_t allocated, uint64_t deallocated)
{
	recheck_settled();
	if (ns.active)
		ns_remote_tick();
	ns_stats_tick();
}

/* Set without a mallctl (shim/je.c): a process passing through does not
 * start jemalloc's ctl module for it. */
void ns_thread_watch(void)
{
	if (!ns_self.callback && ns_je_set_activity(activity, NULL) == 0)
		ns_self.callback = 1;
}

/* ------------------------------------------------------ pthread_create */

/*
 * A statistics refresh made inline runs on the stack of the thread whose
 * allocation made it due: about 3 KiB and 8 bytes per arena (36 KiB at
 * jemalloc's 4,094), on top of the program's frames. A thread with the
 * smallest stack glibc allows (16 KiB here) died of it (fake_nodes
 * tiny-stack). So only threads whose stack is known to be large refresh
 * inline: the main thread unless RLIMIT_STACK is small, and the threads
 * made through our pthread_create with a large stack (from the creation's
 * attributes, or glibc's default for them). The others (small stacks,
 * threads started before numashim or by raw clone) leave it to them.
 */
#define NS_REFRESH_STACK_MIN (256 << 10)

static bool big_stack(const pthread_attr_t *attr)
{
	pthread_attr_t dflt;
	size_t size = 0;

	if (attr != NULL)
		return pthread_attr_getstacksize(attr, &size) == 0 &&
		       size >= NS_REFRESH_STACK_MIN;
	/* A fresh attribute object reads glibc's default size. */
	if (pthread_attr_init(&dflt))
		return false;
	if (pthread_attr_getstacksize(&dflt, &size))
		size = 0;
	pthread_attr_destroy(&dflt);
	return size >= NS_REFRESH_STACK_MIN;
}

bool ns_main_stack_big(void)
{
	struct rlimit r;

	return getrlimit(RLIMIT_STACK, &r) == 0 &&
	       (r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= NS_REFRESH_STACK_MIN);
}

/* A new thread, with a large stack, of a process numashim passes through.
 * Neither the free nor the callback sets up the thread's jemalloc state
 * beyond what a first free does (shim/je.c): its own first free still goes
 * back to the block's arena, not into its cache. */
static void *watch_only(void *p)
{
	void *(*fn)(void *) = ((struct ns_start *)p)->fn;
	void *arg = ((struct ns_start *)p)->arg; /* all pthread_create set here */

	free(p);
	ns_self.big_stack = 1; /* else it would not be here */
	ns_thread_watch();
	return fn(arg);
}

/* The start routine returned or called pthread_exit. TLS destructors may
 * still free blocks: they keep the thread's tag (its own blocks stay on the
 * fast path) but must not bind the dying thread again. Also the destructor
 * of T.exit_key, for a thread bound outside our trampoline: without it,
 * each such thread left its arena slot counted for good (a SIGEV_THREAD
 * timer whose callback freed a block of main's: one more per expiry), and
 * new threads piled onto the other arenas of their node (found by a
 * review: after 4 C11 threads, two threads on one CPU shared one arena of
 * two). Once per thread. */
static void thread_exit(void *unused)
{
	if (ns_self.exited)
		return;
	/* First: ns_remote_release may free through jemalloc (a refused
	 * batch), whose activity callback rebound a thread that had moved:
	 * the slot given back here was given back again and the new one
	 * never (found by a review: 200 threads that moved as they ended left
	 * node 1 counting 96 threads and main's node 0 none). */
	ns_self.exited = 1;
	if (ns_self.tag)
		ns_arena_release(ns_self.set, ns_self.slot);
	ns_remote_release(NULL);
}

/* The next definition of `name`: glibc's, in its current version when the
 * symbol is versioned (our own exports carry no version). */
int ns_resolve(void *slot, const char *name, const char *version)
{
	void *f = version ? dlvsym(RTLD_NEXT, name, version) : NULL;

	if (f == NULL)
		f = dlsym(RTLD_NEXT, name);
	if (f == NULL)
		return -ENOENT;
	__atomic_store_n((void **)slot, f, __ATOMIC_RELEASE);
	return 0;
}

static void *trampoline(void *p)
{
	struct ns_start s = *(struct ns_start *)p;
	policy_nodemask_t mask;
	int mode = MPOL_DEFAULT;
	void *ret;

	ns_self.big_stack = s.big_stack;
	ns_self.started = 1;

	ns_place_started(&s);
	/* A thread that inherited a memory policy of its creator's keeps it:
	 * one its creator set, or one the process started with that is not
	 * local allocation (numactl --localalloc, systemd NUMAPolicy=local:
	 * numashim's start took those as no policy, and so do its threads).
	 * The binding comes before the thread's first allocation or free, so
	 * its cache is empty: nothing to flush. */
	if (s.own_policy ||
	    (os_get_mempolicy(&mode, &mask) == 0 && mode != MPOL_DEFAULT &&
	     mode != MPOL_LOCAL))
		ns_thread_own_policy(true);
	else
		bind_here(true, false);
	/* One left off our arenas needs the activity callback too (bind_to
	 * gives it to the others): its remote frees wait in a batch that the
	 * callback sends home (shim/remote.c), which without it waited for the
	 * thread's end (remote_free own-policy). */
	ns_thread_watch();
	/* The creator's block goes home, never into this thread's cache: its
	 * next block of that size would neighbour the creator's (false
	 * sharing), as a thread's first free avoids in jemalloc itself. */
	if (ns_self.tag && ns_tag_of(p) == ns_self.tag)
		nsje_dallocx(p, MALLOCX_TCACHE_NONE);
	else
		free(p); /* home, if another node's */
	pthread_cleanup_push(thread_exit, NULL);
	ret = s.fn(s.arg);
	pthread_cleanup_pop(1);
	return ret;
}

static int resolve_create(void)
{
	return ns_resolve(&T.real_create, "pthread_create", "GLIBC_2.34");
}

NS_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr,
			     void *(*fn)(void *), void *arg)
{
	struct ns_start *s;
	int rc;

	if (T.real_create == NULL && resolve_create())
		return EAGAIN;
	if (ns_sandboxed()) /* no placement, no policy read (sandbox.c) */
		return T.real_create(th, attr, fn, arg);
	if (!ns.active) {
		/* Passing through: the thread only gets the activity callback,
		 * for the statistics (a server's main thread may never
		 * allocate again once its workers run). */
		if (ns_stats_enabled() && big_stack(attr) &&
		    (s = malloc(sizeof(*s))) != NULL) {
			s->fn = fn;
			s->arg = arg;
			rc = T.real_create(th, attr, watch_only, s);
			if (rc)
				free(s);
			return rc;
		}
		return T.real_create(th, attr, fn, arg);
	}
	if ((s = malloc(sizeof(*s))) == NULL) {
		/* Out of memory: the thread runs unbound rather than not at
		 * all. */
		rc = T.real_create(th, attr, fn, arg);
		if (rc == 0)
			ns_stats_thread_start(T.real_create);
		return rc;
	}
	s->fn = fn;
	s->arg = arg;
	s->node = -1;
	s->placed = 0;
	s->big_stack = big_stack(attr);
	s->own_policy = ns_self.own_policy;
	if (ns.plan.threads != POLICY_THREADS_NONE)
		return ns_place_create(T.real_create, th, attr, trampoline, s);
	rc = T.real_create(th, attr, trampoline, s);
	if (rc)
		free(s);
	else
		ns_stats_thread_start(T.real_create);
	return rc;
}
