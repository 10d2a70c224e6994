/*
 * The stats helper thread, which refreshes the segment once an active
 * numashim's program has threads of its own (shim/stats.c says when and
 * why): its start from our pthread_create, its loop (woken by the
 * activity callback; the first refresh a period after the start; the
 * sweep of stale segments), its end when it is the process's last live
 * thread or a seccomp filter comes; and where and how it runs: the CPUs
 * and scheduling it takes, from what the process had at its start or fork
 * and what the thread that creates it has then.
 */
#include "shim/stats_int.h"
#include "stats/stale.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NS_STALE_PERIOD_MS 600000 /* 10 min: every process scans */

static struct {
	cpu_set_t start_cpus;       /* the process's affinity at start */
	bool start_cpus_ok;
	int start_policy;           /* and its scheduling policy */
	struct sched_param start_prio;
	int helper_policy;          /* what the helper takes (-1: inherit) */
	struct sched_param helper_prio;
} H = { .start_policy = -1, .helper_policy = -1 };

/*
 * The helper runs where the process started, not where the thread that
 * happens to create it is: that thread may have pinned itself to a CPU it
 * keeps for its own loop. So the helper moves itself, first thing, to the
 * CPUs the process had at its start (or its fork). Its scheduling is the
 * less urgent of the process's at its start and its creator's now
 * (ns_helper_choose): a creator that raised itself to real time hands that
 * on no more than a process started real-time lifts the helper above the
 * threads it runs at lower priorities; and a process that runs real-time
 * keeps a real-time helper (the refresh takes jemalloc's arena locks its
 * real-time threads wait for: a helper below them could be starved
 * holding one). Done by the helper itself, each on its own (glibc's
 * thread attributes take no SCHED_BATCH or SCHED_IDLE, and a start mask a
 * cpuset no longer allows must not cost the policy); a refused call
 * leaves what was inherited. The raw system call: our sched_setaffinity
 * would bind the helper to a node's arenas.
 */
static void ns_helper_place(void)
{
	if (H.start_cpus_ok)
		syscall(SYS_sched_setaffinity, 0, sizeof(H.start_cpus),
			&H.start_cpus);
	if (H.helper_policy >= 0)
		sched_setscheduler(0, H.helper_policy, &H.helper_prio);
}

/* The scheduling policy and priority the calling thread hands on to a new
 * thread; -1 if either cannot be read. Under SCHED_RESET_ON_FORK a
 * real-time policy is not handed on: the program's new threads run
 * SCHED_OTHER, and a real-time helper ran above them (found by a review:
 * chrt -f -R 10 made a SCHED_FIFO helper). */
static int sched_now(struct sched_param *prio)
{
	int policy = sched_getscheduler(0);

	if (policy < 0 || sched_getparam(0, prio) != 0)
		return -1;
	if (policy & SCHED_RESET_ON_FORK) {
		policy &= ~SCHED_RESET_ON_FORK;
		if (policy == SCHED_FIFO || policy == SCHED_RR) {
			prio->sched_priority = 0;
			policy = SCHED_OTHER;
		}
	}
	return policy;
}

/* How urgent a policy is: SCHED_IDLE 0, SCHED_OTHER and SCHED_BATCH 1, the
 * real-time ones 2 + their priority. */
static int urgency(int policy, const struct sched_param *p)
{
	if (policy == SCHED_IDLE)
		return 0;
	if (policy == SCHED_FIFO || policy == SCHED_RR)
		return 2 + p->sched_priority;
	return 1;
}

/* In the creating thread: the helper's scheduling (see above); the start's
 * when both are as urgent (SCHED_BATCH at start stays SCHED_BATCH). */
static void ns_helper_choose(void)
{
	struct sched_param now;
	int policy = sched_now(&now);

	H.helper_policy = H.start_policy;
	H.helper_prio = H.start_prio;
	if (H.start_policy < 0 || policy < 0)
		return;
	if (urgency(policy, &now) < urgency(H.start_policy, &H.start_prio)) {
		H.helper_policy = policy;
		H.helper_prio = now;
	}
}

/* At the start or fork of an active process (the helper exists only
 * then), in its only thread. */
void ns_helper_take_start(void)
{
	H.start_cpus_ok = sched_getaffinity(0, sizeof(H.start_cpus),
					    &H.start_cpus) == 0;
	H.start_policy = sched_now(&H.start_prio);
}

/*
 * 1 when the helper is the process's last live thread, 0 when it is not,
 * -1 when /proc cannot tell (none mounted, or another pid namespace's: a
 * chroot or sandbox without /proc). glibc ends a process when its last
 * thread ends (exit(0)), and counts the helper as one: a program whose main
 * thread calls pthread_exit would otherwise live on with only the helper,
 * and did for ever where /proc could not be read (found by a review).
 * procfs gives a task directory 2 + threads links, and a main thread that
 * called pthread_exit stays listed, as a zombie, until the whole process
 * ends.
 */
static int last_live_thread(void)
{
	struct stat st;
	uint64_t start;
	char state;

	if (stat("/proc/self/task", &st) != 0)
		return -1;
	if (st.st_nlink > 4)
		return 0;
	if (st.st_nlink <= 3)
		return 1;
	/* The helper and one other: is that other the main thread, gone? */
	if (stats_proc_stat(0, &start, &state) != 0)
		return -1;
	return state == 'Z' || state == 'X';
}

/*
 * At the first refresh and then every NS_STALE_PERIOD_MS: the segments of
 * this user's processes that ended without removing theirs (see
 * stats_remove_stale for what counts as ended): killed ones, and those
 * that made the exit_group system call themselves (_exit and _Exit remove
 * theirs, shim/exit.c). Only here, on the helper thread, where opendir may
 * allocate.
 */
static void remove_stale(void)
{
	uint64_t now = ns_now_ms();

	if (ns_stats.last_stale_ms != 0 &&
	    now - ns_stats.last_stale_ms < NS_STALE_PERIOD_MS)
		return;
	ns_stats.last_stale_ms = now;
	stats_remove_stale("/dev/shm", getpid());
}

/*
 * The helper's own reason to refresh: the segment is still to be made a
 * period after the start. The segment comes with the first refresh, which
 * the activity callback asks for; a program that goes idle before then
 * (a service waiting for its first request) would stay out of the tool's
 * list until it allocates again. Later refreshes stay the callback's: an
 * idle process's figures do not change.
 */
static bool first_due(void)
{
	uint64_t now = ns_now_ms();

	if (!__atomic_load_n(&ns_stats.pending, __ATOMIC_ACQUIRE) ||
	    now - __atomic_load_n(&ns_stats.last_ms, __ATOMIC_RELAXED) < NS_STATS_PERIOD_MS)
		return false;
	__atomic_store_n(&ns_stats.last_ms, now, __ATOMIC_RELAXED);
	return true;
}

static void *helper(void *unused)
{
	/* How often an idle helper checks whether it is the last thread: the
	 * delay a program whose last thread just ended waits for its exit. */
	const struct timespec check = { 0, 500 * 1000000L };
	int last;

	(void)unused;
	prctl(PR_SET_NAME, "numashim-stats", 0, 0, 0);
	ns_helper_place();
	for (;;) {
		while (__atomic_load_n(&ns_stats.wake, __ATOMIC_ACQUIRE) == 0) {
			long rc = syscall(SYS_futex, &ns_stats.wake, FUTEX_WAIT_PRIVATE,
					  0, &check, NULL, 0);

			if (ns_sandboxed())
				goto sandboxed;
			if (rc != 0 && errno == ETIMEDOUT &&
			    (last = last_live_thread()) != 0) {
				/* 1: glibc ends the process. -1: a helper that
				 * cannot see the process end must not keep it
				 * alive: the refresh goes inline for good. */
				__atomic_store_n(&ns_stats.helper, last > 0 ? 0 : -1,
						 __ATOMIC_RELEASE);
				return NULL;
			}
			if (rc != 0 && errno == ETIMEDOUT && first_due())
				break;
		}
		if (__atomic_load_n(&ns_stats.enabled, __ATOMIC_ACQUIRE))
			ns_stats_refresh_now();
		__atomic_store_n(&ns_stats.wake, 0, __ATOMIC_RELEASE);
		if (__atomic_load_n(&ns_stats.enabled, __ATOMIC_ACQUIRE) && !ns_sandboxed())
			remove_stale();
	}
sandboxed:
	/* Its liveness check reads /proc, which the filter may forbid: the
	 * helper ends (there is nothing left for it to refresh). */
	__atomic_store_n(&ns_stats.helper, 0, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * From our pthread_create, once the program's new thread runs: the helper
 * that refreshes the segment, when numashim is active (passing through,
 * the refresh stays inline: numashim adds no thread to a program it
 * leaves alone). It blocks every signal (a signal
 * for the process goes to one of the program's threads), is detached,
 * names itself numashim-stats for top and ps, and allocates through no
 * node arena. If it cannot be made, the refresh stays inline.
 */
void ns_stats_thread_start(ns_create_fn create)
{
	int zero = 0, rc;
	sigset_t all;
	pthread_attr_t attr;
	pthread_t t;

	if (!ns.active ||
	    !__atomic_load_n(&ns_stats.enabled, __ATOMIC_RELAXED) ||
	    ns.cfg.stats_inline ||
	    (ns_stats.seg == NULL &&
	     !__atomic_load_n(&ns_stats.pending, __ATOMIC_ACQUIRE)) ||
	    !__atomic_compare_exchange_n(&ns_stats.helper, &zero, 2, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	ns_helper_choose();
	if (pthread_attr_init(&attr)) {
		__atomic_store_n(&ns_stats.helper, -1, __ATOMIC_RELEASE);
		return;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1 << 20); /* it touches some 20 KiB */
	sigfillset(&all);
	/* glibc leaves out the signals it needs itself (setxid, cancel). */
	pthread_attr_setsigmask_np(&attr, &all);
	rc = create(&t, &attr, helper, NULL);
	pthread_attr_destroy(&attr);
	/* Running, unless the helper has already ended and said so: a wake
	 * would then go to no one, and no refresh come again. */
	if (rc != 0)
		__atomic_store_n(&ns_stats.helper, -1, __ATOMIC_RELEASE);
	else
		__atomic_compare_exchange_n(&ns_stats.helper, &(int){ 2 }, 1,
					    false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
}
