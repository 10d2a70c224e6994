/*
 * Filling the stats segment (stats/layout.h, stats/writer.c): when, by
 * whom, and its life from creation to removal at exit.
 *
 * Counting costs the allocation path nothing: the per-node figures come
 * from jemalloc's own per-arena statistics (kept anyway; folded from the
 * thread caches by the "epoch" refresh), from our slow paths (remote frees,
 * placed mappings) and from a page sampler (shim/stats_collect.c). The
 * segment is refreshed at
 * most NS_STATS_PERIOD_MS apart, from jemalloc's per-thread activity
 * callback (about every 64 KiB a thread allocates or frees), so an idle
 * process shows its last figures with their time. The first refresh, and
 * with it the segment itself, comes one period after the start (or the
 * fork), or later if the program is idle then: a refresh is an "epoch" merge
 * of every arena's statistics, 0.3-0.9 M instructions and some 30 page
 * faults the first time, which a process that lives for milliseconds
 * would pay for figures no one can read before it is gone. Passing
 * through, the first refresh also starts jemalloc's ctl module (shim/je.c),
 * a page per arena: with 1,024 arenas that refresh took 2-3 ms, in the
 * allocation that ran the callback.
 *
 * The refresh itself runs on a helper thread once an active numashim's
 * program has threads of its own (started at its first pthread_create, it
 * ends when it is the last thread left): the epoch merge took
 * 0.16-0.46 ms here with 4-32 arenas (perf probe on refresh, bench/service
 * under 2 emulated nodes), a pause that would otherwise land in one of the
 * program's allocations every second. The callback only wakes the helper
 * (a futex, about 1 us). A single-threaded program, a forked child before
 * its first thread, NUMASHIM_STATS=inline and any process numashim passes
 * through refresh in the callback, in whichever thread's allocation made
 * it due (of those whose stack is known to be large, shim/thread.c): a
 * helper thread must not be what makes a program multi-threaded
 * (unshare(CLONE_NEWUSER) refuses multi-threaded callers), and numashim
 * adds none to a program it leaves alone. The helper thread itself (its
 * start, loop and end, and where it runs) is in shim/stats_helper.c,
 * sharing this file's state through shim/stats_int.h.
 */
#include "shim/stats_int.h"
#include "shim/log.h"
#include "shim/os.h"
#include "stats/stale.h"
#include "stats/writer.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ns_stats_state ns_stats;

/* The process's name, read where the calling thread is the process's only
 * one (the constructor, a fork's child): the segment may be made later, in
 * another thread, whose name PR_GET_NAME would give. One system call where
 * reading /proc/self/comm takes four (about 5 us of a process start). */
static void save_comm(void)
{
	if (prctl(PR_GET_NAME, ns_stats.comm, 0, 0, 0) != 0)
		ns_stats.comm[0] = '\0';
	ns_stats.comm[16] = '\0';
}

/* Start time in clock ticks since boot (/proc/self/stat field 22): with
 * the pid, it names the segment and tells the tool it is still ours; and
 * the image (field 28, stats/layout.h) tells it we have not exec'd since,
 * into a program that no longer writes it. Into ns_stats.start and
 * ns_stats.image. */
static void take_start(void)
{
	uint64_t start = 0, image = 0;
	char state;

	if (stats_proc_image(0, &start, &state, &image) != 0)
		start = image = 0;
	ns_stats.start = start;
	ns_stats.image = image;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void fill_identity(struct ns_stats_header *h)
{
	char buf[256], list[96];
	const char *strict = ns.plan.strict ? " strict" : " advisory";
	/* The thread's view: once the main thread has called pthread_exit,
	 * /proc/self/exe no longer reads (thread-self: Linux 3.17). */
	ssize_t n = readlink("/proc/thread-self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	copy_str(h->exe, sizeof(h->exe), buf);
	copy_str(h->comm, sizeof(h->comm), ns_stats.comm);
	h->active = ns.active;
	h->fake_nodes = (uint32_t)ns.topo.fake;
	h->node_count = (uint32_t)(ns.topo.nr_nodes > 0 ? ns.topo.nr_nodes : 1);
	h->node_mask = ns.topo.online ? ns.topo.online : 1;
	policy_format_nodelist(ns.active ? ns.plan.nodes : h->node_mask, list,
			       sizeof(list));
	buf[0] = '\0';
	strcat(buf, ns.active ? policy_mode_name(ns.plan.mode) : "passthrough");
	strcat(buf, " nodes ");
	strcat(buf, list);
	strcat(buf, strict);
	copy_str(h->policy, sizeof(h->policy), buf);
}

/* May run inside malloc (a forked child's first refresh, inline): the
 * program's errno is left as it was. */
static void create(void)
{
	int err = 0, saved = errno;

	__atomic_store_n(&ns_stats.pending, false, __ATOMIC_RELEASE);
	if (ns_stats.start == 0)
		take_start();
	ns_stats.seg = stats_create(getpid(), ns_stats.start, ns_stats.name,
				    &err);
	if (ns_stats.seg == NULL && err == -EEXIST) {
		/* Not ours to remove: another user's file has the name. */
		ns_log_once(&ns_stats.create_warned,
			    "creating the stats segment", err,
			    "a file numashim may not remove has its name in /dev/shm; "
			    "numashim stat cannot see this process");
	} else if (ns_stats.seg == NULL) {
		ns_log_once(&ns_stats.create_warned,
			    "creating the stats segment", err,
			    "numashim stat cannot see this process");
	} else {
		fill_identity(&ns_stats.seg->h);
		ns_stats.seg->h.image = ns_stats.image;
		/* not read at the start (take_process) */
		if (ns_stats.self_ns == 0)
			ns_stats.self_ns = stats_pid_ns();
		ns_stats.seg->h.pid_ns = ns_stats.self_ns;
		stats_publish(ns_stats.seg); /* readers see it whole */
		/* Published after the name is complete: see ns_stats_exit_now. */
		__atomic_store_n(&ns_stats.owner, ns_stats.seg->h.pid,
				 __ATOMIC_RELEASE);
	}
	errno = saved;
}

static void refresh(void)
{
	/* 12 KiB: not on the stack of the allocating thread that may run
	 * this; ns_stats.lock makes it one refresher's at a time. */
	static struct ns_stats_node nodes[NS_STATS_MAX_NODES];
	struct ns_stats_header *h = &ns_stats.seg->h;
	struct timespec ts;

	memset(nodes, 0, sizeof(nodes));
	ns_stats_collect(nodes);
	clock_gettime(CLOCK_REALTIME, &ts);
	stats_write_begin(ns_stats.seg);
	memcpy(ns_stats.seg->node, nodes, sizeof(nodes));
	h->updated_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	h->updates++;
	h->active = ns.active;
	h->mmap_placed = ns_count.mmap_placed;
	h->mmap_placed_bytes = ns_count.mmap_placed_bytes;
	for (int r = 0; r < NS_STATS_LEFT_REASONS && r < NS_LEFT_REASONS; r++)
		h->mmap_left[r] = ns_count.mmap_left[r];
	h->shm_placed = ns_count.shm_placed;
	h->shm_placed_bytes = ns_count.shm_placed_bytes;
	h->shm_attached = ns_count.shm_attached;
	h->program_mbind = ns_count.program_mbind;
	h->program_set_mempolicy = ns_count.program_set_mempolicy;
	stats_write_end(ns_stats.seg);
}

/* One refresh, and the segment first if it is still to be made; the
 * caller holds ns_stats.lock. Never inlined: bench/cgcount.py finds the
 * refreshes' instructions in callgrind profiles by this name. */
static NS_NOINLINE void refresh_locked(void)
{
	/* looked at under ns_stats.lock: ns_stats_sandboxed */
	if (ns_sandboxed())
		return;
	if (ns_stats.pending)
		create();
	if (ns_stats.seg)
		refresh();
}

void ns_stats_refresh_now(void)
{
	if (__atomic_exchange_n(&ns_stats.lock, 1, __ATOMIC_ACQUIRE))
		return; /* another thread is at it, or the process is ending */
	refresh_locked();
	__atomic_store_n(&ns_stats.lock, 0, __ATOMIC_RELEASE);
}

/* ns_stats.lock, taken within 1,000 tries (a refresh in flight ends well
 * before): false if not. */
static bool lock_bounded(void)
{
	for (int i = 0; i < 1000; i++) {
		if (!__atomic_exchange_n(&ns_stats.lock, 1, __ATOMIC_ACQUIRE))
			return true;
		sched_yield();
	}
	return false;
}

/*
 * A seccomp filter is about to be installed (shim/sandbox.c): no refresh
 * starts from now on (refresh_locked looks at ns.sandboxed under
 * ns_stats.lock), and one in flight is waited for, boundedly, so that none of its system
 * calls meets the filter.
 */
void ns_stats_sandboxed(void)
{
	if (lock_bounded())
		__atomic_store_n(&ns_stats.lock, 0, __ATOMIC_RELEASE);
}

/*
 * The process this state is for, at its start or its fork: its pid and
 * pid namespace, its name, and, when numashim is active (the helper
 * exists only then), the CPUs and scheduling the helper will take
 * (shim/stats_helper.c).
 *
 * The pid namespace is a stat of /proc/self/ns/pid: 10-25 us here, the
 * first in a forked child the dearest (13 % of a fork to exit), so it is
 * read now only where our_process needs it. That is in a process whose
 * parent is outside its namespace (getppid() 0: every namespace's init):
 * a raw clone(CLONE_NEWPID) of such a process can have its very pid.
 * A forked child whose parent it still sees under the pid of this state
 * (the one that forked it) is in its parent's namespace and keeps the
 * namespace read there. Any other process reads it when it makes its
 * segment (create). So a clone of a process that has not made its segment
 * yet, in a namespace of its own where it has the same pid and a parent,
 * passes for that process: it takes a chain of raw clones to get there.
 */
static void take_process(void)
{
	pid_t was = ns_stats.self, parent = getppid();

	ns_stats.self = getpid();
	if (parent == 0)
		ns_stats.self_ns = stats_pid_ns();
	else if (parent != was)
		ns_stats.self_ns = 0; /* read in create */
	save_comm();
	if (ns.active)
		ns_helper_take_start();
}

/* True in the process this state is for; false in a vfork child (in its
 * parent's memory) or the child of a raw clone() or _Fork() (no fork
 * handler ran), including one in a new pid namespace whose pid equals its
 * parent's (a container init's child is pid 1 too). The program's errno
 * stays as it was: this runs inside malloc (the activity callback) and in
 * _exit. */
static bool our_process(void)
{
	int saved = errno;
	uint64_t ns;
	bool ours;

	if (ns_stats.self != getpid())
		return false;
	if (ns_stats.self_ns == 0)
		return true; /* not read yet: see take_process */
	ns = stats_pid_ns();
	ours = !(ns && ns != ns_stats.self_ns);
	errno = saved;
	return ours;
}

/*
 * A refresh inside the program's malloc or free. Making the segment (the
 * first refresh, and a forked child's) opens, reads and closes files:
 * cancellation points, which malloc and free are not. A thread with a
 * cancel pending, holding a mutex around allocations it knew could not
 * act on it, was cancelled inside malloc, the mutex left locked, ns_stats.lock
 * held for good (found by the concurrency review: tests/integration/cancel.test).
 * The cancel stays pending for the thread's next cancellation point.
 */
static void refresh_inline(void)
{
	int old;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	refresh_locked();
	pthread_setcancelstate(old, NULL);
}

void ns_stats_tick(void)
{
	uint64_t now;

	if (!__atomic_load_n(&ns_stats.enabled, __ATOMIC_RELAXED) ||
	    ns_sandboxed())
		return;
	now = ns_now_ms();
	if (now - __atomic_load_n(&ns_stats.last_ms, __ATOMIC_RELAXED) < NS_STATS_PERIOD_MS)
		return;
	/* Waking the helper is safe from any process: a vfork or CLONE_VM
	 * child wakes its parent's (the same futex in the same memory), and
	 * a raw clone() child has no helper, so its wake flag stays set and
	 * its later ticks stop here. */
	if (__atomic_load_n(&ns_stats.helper, __ATOMIC_ACQUIRE) == 1) {
		if (__atomic_exchange_n(&ns_stats.wake, 1,
					__ATOMIC_ACQ_REL) == 0) {
			__atomic_store_n(&ns_stats.last_ms, now,
					 __ATOMIC_RELAXED);
			syscall(SYS_futex, &ns_stats.wake, FUTEX_WAKE_PRIVATE,
				1, NULL, NULL, 0);
		}
		return;
	}
	if (!ns_self.big_stack)
		return; /* not known to be large (shim/thread.c): others will */
	if (__atomic_exchange_n(&ns_stats.lock, 1, __ATOMIC_ACQUIRE))
		return; /* another thread is at it */
	/* Checked again under the lock: another thread may have just done it.
	 * Then, once a period, whether this is the process the state is for
	 * (our_process): a vfork or CLONE_VM child runs in its parent's very
	 * memory, and a raw clone() or _Fork() child (no fork handler ran)
	 * shares its parent's segment mapping; either leaves both alone and
	 * keeps no stats of its own (a vfork child's tick only puts its
	 * parent's next refresh off by a period). */
	if (now - __atomic_load_n(&ns_stats.last_ms, __ATOMIC_RELAXED) >= NS_STATS_PERIOD_MS) {
		__atomic_store_n(&ns_stats.last_ms, now, __ATOMIC_RELAXED);
		if (our_process())
			refresh_inline();
	}
	__atomic_store_n(&ns_stats.lock, 0, __ATOMIC_RELEASE);
}

bool ns_stats_enabled(void)
{
	return __atomic_load_n(&ns_stats.enabled, __ATOMIC_RELAXED);
}

void ns_stats_init(void)
{
	if (!ns.cfg.stats)
		return;
	/* Nothing would refresh the segment: a jemalloc built without
	 * statistics has no activity callback either. */
	if (!ns_self.callback)
		return;
	ns_stats_collect_init();
	take_process();
	ns_stats.enabled = true;
	ns_stats.last_ms = ns_now_ms();
	/* The segment and its first figures together, at the first refresh a
	 * period from now, as in a forked child. A process that lives less
	 * than that (a shell's commands, a build's compilers) makes none: the
	 * file's creation, mapping, first touches, unmapping and removal took
	 * some 50 us of a trivial program's 0.9 ms start here (bench/history/
	 * 2026-11-24.md, section 10), for figures no one could read.
	 * The name now, though: a segment of this name is this very process's
	 * from before an exec (same pid, same start), whose image is gone;
	 * left, it would pass for this program's until the first refresh, and
	 * outlive it if none came. And with the name published (owner),
	 * _exit removes the file even while another thread is making it. */
	take_start();
	if (ns_stats.start != 0) {
		stats_name(ns_stats.name, ns_stats.self, ns_stats.start);
		stats_remove_leftover(ns_stats.name);
		__atomic_store_n(&ns_stats.owner, ns_stats.self,
				 __ATOMIC_RELEASE);
	}
	__atomic_store_n(&ns_stats.pending, true, __ATOMIC_RELEASE);
}

/* The child has its parent's mapping, not a segment of its own: drop the
 * mapping (the parent still uses the file) and make its own lazily, on the
 * first refresh, so a fork that execs at once leaves nothing behind. */
void ns_stats_forked(void)
{
	if (!ns_stats.enabled)
		return;
	if (ns_stats.seg)
		stats_destroy(ns_stats.seg, ns_stats.name, 0);
	ns_stats.seg = NULL;
	ns_stats.owner = 0;
	take_process();
	/* The name is the parent's segment's: a child that exits before it
	 * has one of its own must not remove the parent's. */
	ns_stats.name[0] = '\0';
	ns_stats.start = 0;
	ns_stats.lock = 0;
	/* The helper did not come along: inline until the child's first
	 * thread starts one of its own. */
	ns_stats.helper = 0;
	ns_stats.wake = 0;
	ns_stats.last_stale_ms = 0;
	ns_stats.last_ms = ns_now_ms();
	ns_stats.pending = true;
	ns_stats_collect_forked();
}

__attribute__((destructor)) static void stats_exit(void)
{
	bool locked;

	/* A vfork child that calls exit(), or the child of a raw clone(),
	 * runs this with its parent's state (a vfork child in its very
	 * memory): the parent's segment and refreshes are not its own. */
	/* Sandboxed: no unlink (a filter may kill on it); numashim stat --gc
	 * removes the file once the process has ended. */
	if (!ns_stats.enabled || ns_sandboxed() || !our_process())
		return;
	__atomic_store_n(&ns_stats.enabled, false, __ATOMIC_RELEASE); /* no new refresh starts */
	/* Wait (boundedly) for a refresh in flight; the lock stays taken. */
	locked = lock_bounded();
	/* Unlinking is safe while mapped; unmapping only if no one writes.
	 * Still pending (under the lock): this process made no file, and
	 * makes no unlink call (a seccomp filter may kill on one). */
	stats_destroy(locked ? ns_stats.seg : NULL, ns_stats.name,
		      !locked || !__atomic_load_n(&ns_stats.pending, __ATOMIC_ACQUIRE));
	__atomic_store_n(&ns_stats.owner, 0, __ATOMIC_RELEASE);
	if (locked)
		ns_stats.seg = NULL;
}

/*
 * From _exit, _Exit and quick_exit (shim/exit.c), perhaps in a signal
 * handler or a vfork child: async-signal-safe calls only (getpid, stat,
 * strcpy, unlink), no lock, no unmapping (a refresh may be writing; the
 * process ends anyway). Only the process that made the segment removes
 * its file: a vfork child runs in its parent's memory, segment name
 * included, under a pid of its own, and a child of a raw clone() has the
 * name without our fork handler. The first process publishes its name at
 * its start, a forked child once it has opened its segment: a child that
 * ends in the few microseconds between the two, or a process whose other
 * thread opens the file just after this unlink, leaves the file to the
 * stale-segment sweep.
 */
void ns_stats_exit_now(void)
{
	pid_t owner = __atomic_load_n(&ns_stats.owner, __ATOMIC_ACQUIRE);

	/* owner: the name is complete; pending: no file made yet (create
	 * clears it before it opens the file); our_process: see there. */
	if (owner > 0 && owner == ns_stats.self && !ns_sandboxed() &&
	    !__atomic_load_n(&ns_stats.pending, __ATOMIC_ACQUIRE) &&
	    our_process())
		stats_destroy(NULL, ns_stats.name, 1);
}
