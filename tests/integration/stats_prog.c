/*
 * A program with known allocations, for the stats-segment tests.
 *
 *   stats_prog BLOCKS SIZE [fork | fork-threads | fork-exit | pthread_exit
 *                           | remote R | pinned-main | idle-main | exit-moved]
 * One thread per CPU (pinned: CPU c is virtual node c under
 * NUMASHIM_FAKE_NODES=2) allocates BLOCKS blocks of SIZE bytes and keeps
 * them; then every thread churns small blocks for a while (so the shim
 * refreshes the segment, at most every second, with the final figures), prints "ready PID" and
 * waits for stdin to close. With "fork", the process forks after the
 * threads are done: the child allocates and churns too, prints
 * "child PID", and both wait. With "remote R", a thread on CPU 1 frees R
 * of the blocks CPU 0's thread allocated (remote frees of node 0's blocks)
 * and ends before the main thread churns and prints "ready PID".
 * "fork-threads" is "fork" with the child's work done by a thread it
 * starts; with "fork-exit" the child calls exit(0) at once and the parent
 * waits for it before it churns. With "pthread_exit" the main thread ends
 * by pthread_exit once the threads are started: the process must end with
 * its last thread (status 0), printing nothing. With "pinned-main" the
 * main thread first pins itself to the last CPU it may run on and
 * switches to SCHED_BATCH (from SCHED_OTHER; to SCHED_OTHER if it started
 * under SCHED_BATCH; to 5 below its real-time priority if it started
 * real-time), as a program that keeps a CPU for its main loop does, and
 * prints "start-policy N" (the policy it started with). Nothing churns
 * then: its threads may be real-time. With "idle-main" only the threads
 * churn, as in a server whose main thread waits once its workers run.
 * With "exit-moved" the main thread, on CPU 0, then starts 50 threads in
 * turn that each free 61 blocks of a CPU 1 thread's (batched for node 1,
 * whose stack main has just filled: their batch is refused as they end
 * and freed through jemalloc, which runs their activity callback) and
 * move to CPU 1 by a raw system call just before they end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/check.h"

static size_t blocks, size, remote;
static char **kept; /* with "remote": CPU 0's first `remote` blocks */

static const char *mode_arg;

static bool mode(const char *m)
{
	return mode_arg && strcmp(mode_arg, m) == 0;
}

/* The interposed set_mempolicy (the shim's), for "dtor". */
static long mempolicy(int mode, unsigned long mask)
{
	long (*set)(int, const unsigned long *, unsigned long) =
		(long (*)(int, const unsigned long *, unsigned long))dlsym(RTLD_DEFAULT,
									  "set_mempolicy");

	return set ? set(mode, mode == 0 ? NULL : &mask, mode == 0 ? 0 : 64) : -1;
}

static pthread_key_t dtor_key;

static void dtor(void *how)
{
	mempolicy(how == (void *)1 ? 0 /* MPOL_DEFAULT */ : 1 /* MPOL_PREFERRED */, 1);
}

static void *worker(void *arg)
{
	int cpu = (int)(intptr_t)arg;
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
	if (mode("dtor")) {
		/* Half the threads set a policy and clear it in a key
		 * destructor, the other half set one there only: after
		 * numashim's exit work either way. */
		if (cpu % 2 == 0 && mempolicy(1 /* MPOL_PREFERRED */, 1))
			exit(2);
		pthread_setspecific(dtor_key, cpu % 2 == 0 ? (void *)1 : (void *)2);
	}
	for (size_t i = 0; i < blocks; i++) {
		char *p = malloc(size);

		if (p == NULL)
			exit(2);
		memset(p, 1, size);
		if (cpu == 0 && i < remote)
			kept[i] = p;
	}
	if (remote == 0 && !mode("pinned-main"))
		churn_ms(2200);
	return NULL;
}

/* A forked child's allocations and churn. */
static void *child_work(void *unused)
{
	for (size_t i = 0; i < blocks; i++)
		memset(malloc(size), 2, size);
	churn_ms(2200);
	return unused;
}

static void *remote_freer(void *unused)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(1, &s);
	sched_setaffinity(0, sizeof(s), &s);
	for (size_t i = 0; i < remote; i++)
		free(kept[i]);
	return NULL;
}

/* "exit-moved": the CPU 1 thread allocates 123 blocks of 512 bytes a
 * round (its activity then takes node 1's stack) and waits without
 * allocating; main frees 62 of them (a full batch: node 1's stack is as
 * full as it gets) and an ending thread the other 61. */
#define MOVED_ROUNDS 50
#define MOVED_N 123
static void *moved_blocks[MOVED_N];
static int moved_stage, moved_round;

static void moved_pin(int cpu, bool raw)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (raw) /* as libnuma and taskset do: past numashim's call */
		syscall(SYS_sched_setaffinity, 0, sizeof(s), &s);
	else
		sched_setaffinity(0, sizeof(s), &s);
}

static void *moved_owner(void *unused)
{
	moved_pin(1, false);
	for (int r = 0; r < MOVED_ROUNDS; r++) {
		while (__atomic_load_n(&moved_stage, __ATOMIC_ACQUIRE) != 1)
			sched_yield();
		for (int i = 0; i < MOVED_N; i++)
			moved_blocks[i] = malloc(512);
		__atomic_store_n(&moved_stage, 2, __ATOMIC_RELEASE);
	}
	return unused;
}

static void *moved_ender(void *unused)
{
	/* Its own activity first, a different amount each round: jemalloc's
	 * callback comes every 64 KiB freed, and for some rounds the next one
	 * falls in the 30 KiB of the refused batch. */
	size_t own = (size_t)moved_round * 40503 % 65536;

	for (size_t done = 0; done < own; done += 1024) {
		void *volatile p = malloc(1024); /* not folded away (-O2) */

		free(p);
	}
	for (int i = 62; i < MOVED_N; i++)
		free(moved_blocks[i]);
	moved_pin(1, true);
	return unused;
}

static int exit_moved(void)
{
	pthread_t owner, t;

	moved_pin(0, false);
	if (pthread_create(&owner, NULL, moved_owner, NULL))
		return 2;
	for (moved_round = 0; moved_round < MOVED_ROUNDS; moved_round++) {
		__atomic_store_n(&moved_stage, 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&moved_stage, __ATOMIC_ACQUIRE) != 2)
			sched_yield();
		for (int i = 0; i < 62; i++)
			free(moved_blocks[i]);
		if (pthread_create(&t, NULL, moved_ender, NULL) ||
		    pthread_join(t, NULL))
			return 2;
	}
	return pthread_join(owner, NULL) ? 2 : 0;
}

int main(int argc, char **argv)
{
	int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t t[64];
	char c;

	if (argc < 3)
		return 2;
	mode_arg = argc > 3 ? argv[3] : NULL;
	blocks = strtoul(argv[1], NULL, 0);
	size = strtoul(argv[2], NULL, 0);
	if (argc > 4 && strcmp(argv[3], "remote") == 0) {
		remote = strtoul(argv[4], NULL, 0);
		if (remote > blocks || (kept = calloc(remote, sizeof(*kept))) == NULL)
			return 2;
	}
	if (cpus > 64)
		cpus = 64;
	if (mode("dtor") && pthread_key_create(&dtor_key, dtor))
		return 2;
	if (mode("pinned-main")) {
		struct sched_param prio = { 0 };
		int start = sched_getscheduler(0), to = -1, last = -1;
		cpu_set_t allowed, one;

		/* The last CPU it may run on; the other normal policy. */
		if (sched_getaffinity(0, sizeof(allowed), &allowed))
			return 2;
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &allowed))
				last = c;
		CPU_ZERO(&one);
		CPU_SET(last, &one);
		if (start == SCHED_OTHER)
			to = SCHED_BATCH;
		else if (start == SCHED_BATCH)
			to = SCHED_OTHER;
		else if ((start == SCHED_FIFO || start == SCHED_RR) &&
			 sched_getparam(0, &prio) == 0 && prio.sched_priority > 5) {
			to = start; /* lower real time: a ceiling for the helper */
			prio.sched_priority -= 5;
		}
		if (CPU_COUNT(&allowed) < 2 ||
		    sched_setaffinity(0, sizeof(one), &one) ||
		    (to >= 0 && sched_setscheduler(0, to, &prio)))
			return 2;
		printf("start-policy %d\n", start);
		fflush(stdout);
	}
	for (int i = 0; i < cpus; i++)
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
	if (mode("pthread_exit"))
		pthread_exit(NULL);
	for (int i = 0; i < cpus; i++)
		pthread_join(t[i], NULL);
	if (mode("exit-moved") && exit_moved())
		return 2;
	if (remote) {
		pthread_t r;

		if (pthread_create(&r, NULL, remote_freer, NULL) ||
		    pthread_join(r, NULL))
			return 2;
	}
	if (mode("fork-exit")) {
		pid_t pid = fork();

		if (pid == 0)
			exit(0);
		if (pid < 0 || waitpid(pid, NULL, 0) != pid)
			return 2;
	}
	if (mode("fork") || mode("fork-threads")) {
		pid_t pid = fork();

		if (pid == 0) {
			pthread_t w;

			if (mode("fork-threads")) {
				if (pthread_create(&w, NULL, child_work, NULL) ||
				    pthread_join(w, NULL))
					return 2;
			} else {
				child_work(NULL);
			}
			printf("child %d\n", (int)getpid());
			fflush(stdout);
			while (read(0, &c, 1) > 0)
				;
			return 0;
		}
		churn_ms(2200);
		printf("ready %d\n", (int)getpid());
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
		waitpid(pid, NULL, 0);
		return 0;
	}
	if (!mode("pinned-main") && !mode("idle-main"))
		churn_ms(2200);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
