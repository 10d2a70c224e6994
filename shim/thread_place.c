/*
 * NUMASHIM_THREADS: the node and CPUs a new thread is placed on, and the
 * program's own affinity calls (sched_setaffinity, pthread_setaffinity_np),
 * which rebind the calling thread and end numashim's claim on its pin.
 *
 * Placement stays within the CPUs the new thread would have had without
 * numashim: its creator's affinity (a taskset or cpuset of the program
 * stays respected), unless that is numashim's own pin of the creator.
 * Then it is the mask the creator would have had (its own creator's, and
 * so on up to a thread numashim did not place). Intersected with the
 * creator's current affinity instead, a thread placed on node 0 could only
 * place its own threads on node 0: a JVM, whose launcher runs Java's main
 * in a new thread, ended with every thread there (found by a review).
 */
#include "shim/shim.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
	int (*real_setaffinity)(pid_t, size_t, const cpu_set_t *);
	int (*real_pthread_setaffinity)(pthread_t, size_t, const cpu_set_t *);
	unsigned long created;              /* threads placed so far */
	int cpus_of[POLICY_MAX_NODES];      /* usable CPUs per node */
} P;

/* A placed thread's CPUs as they would be without numashim (its creator's
 * base): meaningful while ns_self.placed is set. */
static __thread cpu_set_t inherited __attribute__((tls_model("initial-exec")));

void ns_place_init(void)
{
	cpu_set_t mine;

	if (ns.plan.threads == POLICY_THREADS_NONE)
		return;
	if (sched_getaffinity(0, sizeof(mine), &mine))
		CPU_ZERO(&mine);
	for (int c = 0; c < ns.topo.nr_cpus && c < CPU_SETSIZE; c++)
		if (ns.topo.cpu_node[c] >= 0 && CPU_ISSET(c, &mine))
			P.cpus_of[ns.topo.cpu_node[c]]++;
}

/* `node`'s CPUs within `base`; false when there are none. */
static bool node_cpus(int node, const cpu_set_t *base, cpu_set_t *want)
{
	CPU_ZERO(want);
	for (int c = 0; c < ns.topo.nr_cpus && c < CPU_SETSIZE; c++)
		if (ns.topo.cpu_node[c] == node && CPU_ISSET(c, base))
			CPU_SET(c, want);
	return CPU_COUNT(want) > 0;
}

/*
 * The CPUs the calling thread's new threads are placed within: its
 * affinity, or, while that is still the pin numashim gave it, the one it
 * inherited. The pin stops being numashim's when the thread changes its
 * own affinity through our calls (below), or when its affinity is no
 * longer exactly the pin (another thread's pthread_setaffinity_np, a raw
 * system call, taskset -p). False if the affinity cannot be read.
 */
static void base_of(const cpu_set_t *cur, cpu_set_t *base)
{
	cpu_set_t pin;

	*base = *cur;
	if (ns_self.placed && node_cpus(ns_self.placed - 1, &inherited, &pin) &&
	    CPU_EQUAL(&pin, cur))
		*base = inherited;
}

static bool base_cpus(cpu_set_t *base)
{
	cpu_set_t cur;

	if (sched_getaffinity(0, sizeof(cur), &cur))
		return false;
	base_of(&cur, base);
	return true;
}

/* In the new thread: pins it to its node's CPUs when its creator could not
 * (an attribute of the program's), and remembers what it inherited. */
void ns_place_started(const struct ns_start *s)
{
	cpu_set_t want;

	if (s->node >= 0 && node_cpus(s->node, &s->base, &want) &&
	    (P.real_setaffinity != NULL ||
	     ns_resolve(&P.real_setaffinity, "sched_setaffinity", NULL) == 0) &&
	    P.real_setaffinity(0, sizeof(want), &want) == 0) {
		NS_COUNT(threads_placed[s->node], 1);
		ns_self.placed = (uint8_t)(s->node + 1);
	} else {
		ns_self.placed = (uint8_t)s->placed;
	}
	if (ns_self.placed)
		inherited = s->base;
}

/*
 * A fork's child is a process of its own: the thread that forked, if
 * numashim had pinned it, gets back the CPUs it would have had, and so do
 * the child's later threads and its stats helper (which takes the child's
 * CPUs after this). Without it, a child forked by a placed thread ran on
 * one node, and so did everything it started. The raw system call: ours
 * would rebind the thread, and the child's allocator is rebound anyway as
 * the thread moves. A child that wants its parent thread's node pins itself.
 */
void ns_place_forked(void)
{
	cpu_set_t pin;

	ns_place_unpin(&pin);
	ns_self.placed = 0;
}

/* glibc reports every CPU for an attribute without an affinity. */
static bool has_affinity(const pthread_attr_t *attr)
{
	cpu_set_t set;

	if (attr == NULL || pthread_attr_getaffinity_np(attr, sizeof(set), &set))
		return false;
	return CPU_COUNT(&set) < CPU_SETSIZE;
}

/*
 * A new thread's node, and its CPUs. Without an attribute, the thread gets
 * glibc's default one (pthread_setattr_default_np) with the node's CPUs as
 * its affinity: glibc sets it before the thread runs, so a
 * pthread_setaffinity_np its creator makes once pthread_create has
 * returned wins (placed from the new thread, it was undone: found by a
 * review), and a default that carries an affinity of its own is kept. An
 * attribute of the program's cannot be copied (glibc has no call for it)
 * nor changed (another thread may be using it): without an affinity, the
 * new thread pins itself first thing, and a creator's call may come before
 * that (README).
 */
int ns_place_create(ns_create_fn create, pthread_t *th,
		    const pthread_attr_t *attr, void *(*start)(void *),
		    struct ns_start *s)
{
	pthread_attr_t dflt;
	bool have_dflt = attr == NULL && pthread_getattr_default_np(&dflt) == 0;
	const pthread_attr_t *use = attr;
	cpu_set_t want;
	int node = -1, rc;

	if (!has_affinity(have_dflt ? &dflt : attr) && base_cpus(&s->base))
		node = policy_thread_node(&ns.plan, ns.plan.threads,
					  __atomic_fetch_add(&P.created, 1,
							     __ATOMIC_RELAXED),
					  P.cpus_of);
	if (node >= 0 && have_dflt && node_cpus(node, &s->base, &want) &&
	    pthread_attr_setaffinity_np(&dflt, sizeof(want), &want) == 0) {
		use = &dflt;
		s->placed = node + 1;
	} else {
		s->node = node;
	}
	rc = create(th, use, start, s);
	if (rc && rc != EAGAIN && use == &dflt) {
		/* glibc fails the creation when the kernel refuses the
		 * affinity (a seccomp filter on sched_setaffinity, a cpuset):
		 * made as asked, the thread pins itself, best effort (found by
		 * a review: every pthread_create failed with EPERM). */
		s->node = node;
		s->placed = 0;
		use = attr;
		rc = create(th, attr, start, s);
	}
	if (have_dflt)
		pthread_attr_destroy(&dflt);
	if (rc) {
		free(s);
		return rc;
	}
	if (use == &dflt)
		NS_COUNT(threads_placed[node], 1);
	ns_stats_thread_start(create);
	return 0;
}

/* ------------------------------------------------------ affinity changes */

/*
 * A thread that pins itself is on its new CPU when the call returns (the
 * kernel migrates the caller before it does): rebind now rather than after
 * the next 64 KiB of activity, so a thread that pins itself right after it
 * starts gets its very first blocks from its new node. Its affinity is the
 * program's from then on: its new threads are placed within it.
 */
NS_EXPORT int sched_setaffinity(pid_t pid, size_t len, const cpu_set_t *set)
{
	int rc;

	if (P.real_setaffinity == NULL &&
	    ns_resolve(&P.real_setaffinity, "sched_setaffinity", NULL)) {
		errno = ENOSYS;
		return -1;
	}
	rc = P.real_setaffinity(pid, len, set);
	if (rc == 0 && (pid == 0 || pid == gettid())) {
		ns_self.placed = 0;
		if (ns.active)
			ns_thread_recheck();
	}
	return rc;
}

NS_EXPORT int pthread_setaffinity_np(pthread_t th, size_t len,
				     const cpu_set_t *set)
{
	int rc;

	if (P.real_pthread_setaffinity == NULL &&
	    ns_resolve(&P.real_pthread_setaffinity, "pthread_setaffinity_np",
		       "GLIBC_2.34"))
		return ENOSYS;
	rc = P.real_pthread_setaffinity(th, len, set);
	if (rc == 0 && pthread_equal(th, pthread_self())) {
		ns_self.placed = 0;
		if (ns.active)
			ns_thread_recheck();
	}
	return rc;
}

/*
 * A placed thread takes the CPUs it would have had without numashim: in a
 * fork's child (above), and around posix_spawn, system and popen, which
 * start a program without a fork handler (glibc clones with CLONE_VFORK):
 * such a program kept the thread's one-node pin, and so did all it started
 * in turn (shim/spawn.c), until ns_place_repin gives the pin back. The raw
 * system call: ours would end numashim's claim on the pin. True, with the
 * pin in *pin, when the thread was unpinned.
 */
bool ns_place_unpin(cpu_set_t *pin)
{
	cpu_set_t base;

	/* Under a seccomp filter numashim makes no system call of its own
	 * (shim/sandbox.c): the program starts with the thread's pin. */
	if (!ns_self.placed || ns_sandboxed() ||
	    sched_getaffinity(0, sizeof(*pin), pin))
		return false;
	base_of(pin, &base);
	return !CPU_EQUAL(&base, pin) &&
	       syscall(SYS_sched_setaffinity, 0, sizeof(base), &base) == 0;
}

/*
 * The pin back, unless the thread's affinity is no longer what
 * ns_place_unpin set: the program changed it during the call (another
 * thread's pthread_setaffinity_np, taskset -p), and its choice stands, as
 * any change of the program's does (found by the concurrency review: the
 * pin used to be given back over it). A change between the check and the
 * call is still lost: a window of two system calls. The caller's errno
 * survives (spawn.c returns the call's).
 */
void ns_place_repin(const cpu_set_t *pin)
{
	cpu_set_t base, cur;
	int saved = errno;

	base_of(pin, &base);
	if (sched_getaffinity(0, sizeof(cur), &cur) == 0 && CPU_EQUAL(&cur, &base))
		syscall(SYS_sched_setaffinity, 0, sizeof(*pin), pin);
	else
		ns_self.placed = 0;
	errno = saved;
}
