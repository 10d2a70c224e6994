/*
 * Where and how the stats helper thread runs (shim/stats.c starts it):
 * the CPUs and scheduling it takes, from what the process had at its
 * start or fork and what the thread that creates it has then.
 */
#include "shim/shim.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

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
void ns_helper_place(void)
{
	if (H.start_cpus_ok)
		syscall(SYS_sched_setaffinity, 0, sizeof(H.start_cpus),
			&H.start_cpus);
	if (H.helper_policy >= 0)
		sched_setscheduler(0, H.helper_policy, &H.helper_prio);
}

/* The calling thread's scheduling policy (without SCHED_RESET_ON_FORK)
 * and priority; -1 if either cannot be read. */
static int sched_now(struct sched_param *prio)
{
	int policy = sched_getscheduler(0);

	if (policy < 0 || sched_getparam(0, prio) != 0)
		return -1;
	return policy & ~SCHED_RESET_ON_FORK;
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
void ns_helper_choose(void)
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
