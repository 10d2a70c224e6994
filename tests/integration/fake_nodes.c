/*
 * Node choice and origin-aware free on an emulated topology
 * (NUMASHIM_FAKE_NODES=2 on a host with at least 2 CPUs: CPU 0 is virtual
 * node 0, CPU 1 virtual node 1). Run under the shim; the same binary run
 * with NUMASHIM_POLICY=off must fail the numashim-specific checks, which
 * the .test script verifies, so these checks cannot pass by accident.
 *
 * Each arena set's extents start on 2 MiB boundaries, so "which 2 MiB
 * chunks does a thread's memory come from" tells which set served it.
 *
 *   usage: fake_nodes switch|home|realloc|first|start|handed|tiny-stack|
 *                     tiny-stack-raw|share shared|separate
 *   switch: a thread allocates on CPU 0, moves to CPU 1, allocates again;
 *           the second batch must share no chunk with the first.
 *   home:   a thread on CPU 0 allocates blocks; a thread on CPU 1 frees
 *           them and allocates the same sizes: it must get none of them
 *           back (they went home to node 0, not into its cache).
 *   realloc: a thread on CPU 1 reallocs, within their size class, blocks
 *           a thread on CPU 0 allocated: each must move to its own node
 *           (none left in a chunk of CPU 0's), contents kept.
 *   first:  the main thread's first small blocks come from its node
 *           arena's chunk, as its later ones do: none from a thread
 *           cache filled before the binding (from jemalloc's automatic
 *           arena: numashim's start, a library's constructor), whose
 *           blocks neighbour other threads' (cf. bench/cache_scratch.c).
 *   start:  nothing: the shim's start and exit alone.
 *   handed: a new thread frees a small block its creator allocated, then
 *           allocates one of the same size: as with plain jemalloc, it
 *           must not get that block back (a thread's first free goes
 *           back to the block's arena, not into its cache; else the new
 *           thread's block shares a cache line with its creator's, cf.
 *           bench/cache_scratch.c). Meant for a process passing through.
 *   tiny-stack: a thread with the smallest stack glibc allows
 *           (PTHREAD_STACK_MIN) allocates and frees for 1.5 s, past the
 *           statistics' first refresh: it must not run that refresh on
 *           its stack (jemalloc's merge and numashim's figures take tens
 *           of KiB), and must end normally.
 *   tiny-stack-raw: the same, the thread made by libc's own
 *           pthread_create (the shim never sees its creation).
 *   share shared|separate: two threads on CPU 0 allocate at the same
 *           time; with NUMASHIM_ARENAS_PER_CPU=1 they share node 0's one
 *           arena (their blocks come from the same chunks), with 2 each
 *           has an arena of its own (no chunk in common).
 *   localalloc: "share shared" in a process whose memory policy is
 *           MPOL_LOCAL, set by a raw system call as numactl --localalloc
 *           sets it before the exec: the new thread inherits it and must
 *           still use its node's arena (it was taken off the arenas).
 *   moves N: (NUMASHIM_ARENAS_PER_CPU=2) the main thread goes to CPU 1
 *           and back N times, then "c11"'s two threads on CPU 0 must
 *           still get an arena each: a switch gives its old slot back.
 *   setaffinity N: (NUMASHIM_THREADS=spread) N times, a thread created
 *           without an attribute is given every CPU by its creator right
 *           after pthread_create; it must keep them (numashim's placement
 *           from inside the new thread undid the creator's call).
 *   default-affinity: (NUMASHIM_THREADS=spread) glibc's default thread
 *           attribute carries every CPU, the creator is pinned to CPU 0:
 *           a thread created without an attribute must get every CPU.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

#include "tests/integration/check.h"

#define N 2000
#define CHUNK_SHIFT 21

static void *blocks[N], *again[N];
/* Addresses kept as integers: comparing a pointer after free() lets the
 * compiler assume the answer. */
static uintptr_t freed[N];

static size_t size_of(int i)
{
	return 16 + (size_t)(i % 64) * 24;
}

static void fill(void **v, int n)
{
	for (int i = 0; i < n; i++) {
		v[i] = malloc(size_of(i));
		if (v[i] == NULL) {
			fprintf(stderr, "malloc(%zu) failed\n", size_of(i));
			exit(1);
		}
		memset(v[i], i & 0xff, size_of(i));
	}
}

static int shared_chunks(void **a, void **b, int n)
{
	int shared = 0;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (((uintptr_t)a[i] >> CHUNK_SHIFT) ==
			    ((uintptr_t)b[j] >> CHUNK_SHIFT)) {
				shared++;
				break;
			}
	return shared;
}

static int test_switch(void)
{
	int shared;

	if (check_pin(0))
		return 1;
	fill(blocks, N);
	if (check_pin(1))
		return 1;
	/* Enough activity for jemalloc's per-thread callback (every 64 KiB)
	 * to notice the move, as any real workload would produce. */
	for (int i = 0; i < 64; i++)
		check_churn(4096);
	fill(again, N);
	shared = shared_chunks(blocks, again, N);
	printf("switch: %d of %d blocks allocated after moving to CPU 1 share a "
	       "2 MiB chunk with those allocated on CPU 0\n", shared, N);
	return shared == 0 ? 0 : 1;
}

static void *consumer(void *unused)
{
	int reused = 0;

	if (check_pin(1))
		exit(1);
	/* Warm up this thread's cache: jemalloc serves a thread that has only
	 * ever freed without one, which would hide what this test checks. */
	for (int i = 0; i < 64; i++)
		check_churn(size_of(i));
	for (int i = 0; i < N; i++) {
		freed[i] = (uintptr_t)blocks[i];
		free(blocks[i]);
	}
	fill(again, N);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			if ((uintptr_t)again[i] == freed[j]) {
				reused++;
				break;
			}
	printf("home: the CPU 1 thread got %d of the %d blocks it freed (from "
	       "CPU 0) back from its own allocations\n", reused, N);
	return (void *)(intptr_t)(reused == 0 ? 0 : 1);
}

static int test_home(void)
{
	pthread_t t;
	void *rc;

	if (check_pin(0))
		return 1;
	fill(blocks, N);
	if (pthread_create(&t, NULL, consumer, NULL) || pthread_join(t, &rc))
		return 1;
	return (int)(intptr_t)rc;
}

/* Sizes 40 and 48 share jemalloc's 48-byte class: jemalloc alone would
 * resize in place and the block would stay on node 0. */
static void *reallocator(void *unused)
{
	int kept = 0, bad = 0;

	if (check_pin(1))
		exit(1);
	for (int i = 0; i < 64; i++)
		check_churn(size_of(i));
	for (int i = 0; i < N; i++) {
		again[i] = realloc(blocks[i], 48);
		if (again[i] == NULL)
			exit(1);
		if (memcmp(again[i], "\x5a\x5a\x5a\x5a", 4) != 0)
			bad++;
	}
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			if (((uintptr_t)again[i] >> CHUNK_SHIFT) == (freed[j] >> CHUNK_SHIFT)) {
				kept++;
				break;
			}
	printf("realloc: %d of %d blocks of CPU 0 realloc'd on CPU 1 (same size "
	       "class) are still in a 2 MiB chunk of CPU 0's; %d lost their "
	       "contents\n", kept, N, bad);
	return (void *)(intptr_t)(kept == 0 && bad == 0 ? 0 : 1);
}

static int test_realloc(void)
{
	pthread_t t;
	void *rc;

	if (check_pin(0))
		return 1;
	for (int i = 0; i < N; i++) {
		if ((blocks[i] = malloc(40)) == NULL)
			return 1;
		memset(blocks[i], 0x5a, 40);
		freed[i] = (uintptr_t)blocks[i];
	}
	if (pthread_create(&t, NULL, reallocator, NULL) || pthread_join(t, &rc))
		return 1;
	return (int)(intptr_t)rc;
}

static void *second(void *unused)
{
	/* Created by a thread pinned to CPU 0: it starts there too. */
	fill(again, N);
	return NULL;
}

static int test_share(const char *expect)
{
	pthread_t t;
	int shared;

	if (check_pin(0))
		return 1;
	fill(blocks, N);
	if (pthread_create(&t, NULL, second, NULL) || pthread_join(t, NULL))
		return 1;
	shared = shared_chunks(blocks, again, N);
	printf("share: %d of %d blocks of a second thread on CPU 0 share a "
	       "2 MiB chunk with the first thread's (expected: %s arenas)\n",
	       shared, N, expect);
	return strcmp(expect, "shared") == 0 ? shared == 0 : shared != 0;
}

/* A C11 thread: glibc makes it without numashim's pthread_create. Its
 * free of main's block binds it (shim/remote.c, free_unbound); its exit
 * must give its arena slot back. */
static int c11_thread(void *block)
{
	if (check_pin(0))
		return 1;
	free(block);
	return 0;
}

static pthread_barrier_t both;

static void *filler(void *v)
{
	if (check_pin(0))
		return (void *)1;
	pthread_barrier_wait(&both);
	fill(v, N);
	pthread_barrier_wait(&both);
	return NULL;
}

/* Two threads on CPU 0, alive together: with NUMASHIM_ARENAS_PER_CPU=2
 * they must not share an arena. 0 if they do not. */
static int two_fillers(const char *name, int after, const char *what)
{
	pthread_t t[2];
	void *rc[2] = { (void *)1, (void *)1 };
	int shared;

	pthread_barrier_init(&both, NULL, 2);
	if (pthread_create(&t[0], NULL, filler, blocks) ||
	    pthread_create(&t[1], NULL, filler, again) ||
	    pthread_join(t[0], &rc[0]) || pthread_join(t[1], &rc[1]) || rc[0] || rc[1])
		return 1;
	shared = shared_chunks(blocks, again, N);
	printf("%s: after %d %s, %d of %d blocks of one of two threads on CPU 0 "
	       "share a 2 MiB chunk with the other's (expected: none, an arena "
	       "each)\n", name, after, what, shared, N);
	return shared != 0;
}

/* c11 C11 threads, each ended before the next; then two threads on CPU 0,
 * alive together, with NUMASHIM_ARENAS_PER_CPU=2: one arena each. Their
 * slots leaked before, and after 4 the two shared one arena. */
static int test_c11(int c11)
{
	if (check_pin(0))
		return 1;
	for (int i = 0; i < c11; i++) {
		thrd_t c;
		int res = 1;

		if (thrd_create(&c, c11_thread, malloc(32)) != thrd_success ||
		    thrd_join(c, &res) != thrd_success || res != 0)
			return 1;
	}
	return two_fillers("c11", c11, "ended C11 threads");
}

/* The main thread moves to CPU 1 and back `moves` times (a switch of
 * node arenas each way), ending on CPU 0; then, as in test_c11, two
 * threads on CPU 0 with NUMASHIM_ARENAS_PER_CPU=2 get an arena each. A
 * switch that kept the slot it left counted (main's node 0 arena seen
 * busy 1 + moves times) gave both new threads node 0's second arena. */
static int test_moves(int moves)
{
	if (check_pin(0))
		return 1;
	for (int m = 0; m < moves; m++)
		for (int cpu = 1; cpu >= 0; cpu--) {
			if (check_pin(cpu))
				return 1;
			for (int i = 0; i < 64; i++)
				check_churn(4096);
		}
	return two_fillers("moves", moves, "round trips of the main thread to CPU 1");
}

static int test_first(void)
{
	static void *small[N];
	uintptr_t first;
	int others = 0;

	for (int i = 0; i < N; i++)
		small[i] = malloc(8);
	first = (uintptr_t)small[N - 1] >> CHUNK_SHIFT;
	for (int i = 0; i < N; i++)
		others += ((uintptr_t)small[i] >> CHUNK_SHIFT) != first;
	printf("first: %d of the main thread's first %d 8-byte blocks lie "
	       "outside the chunk of its last (expected: none)\n", others, N);
	for (int i = 0; i < N; i++)
		free(small[i]);
	return others != 0;
}

static void *handed(void *block)
{
	void *mine;

	free(block);
	mine = malloc(8);
	printf("handed: the new thread's first 8-byte block %s the one it "
	       "freed (expected: another)\n", mine == block ? "is" : "is not");
	return (void *)(intptr_t)(mine == block);
}

static int test_handed(void)
{
	pthread_t t;
	void *rc;

	if (pthread_create(&t, NULL, handed, malloc(8)) ||
	    pthread_join(t, &rc))
		return 1;
	return (int)(intptr_t)rc;
}

static void *tiny(void *block)
{
	/* The creator's block: under numashim a thread it has not bound yet
	 * binds (and gets the activity callback) on such a free. */
	free(block);
	churn_ms(1500);
	return NULL;
}

/* raw: made by libc's own pthread_create, as a thread made before the
 * shim's constructor or by a library that looks glibc's up itself. */
static int test_tiny_stack(bool raw)
{
	int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
		      void *) = pthread_create;
	pthread_attr_t attr;
	pthread_t t;

	if (raw) {
		void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);

		if (libc == NULL ||
		    (create = (__typeof__(create))dlsym(libc, "pthread_create")) == NULL)
			return 1;
	}
	if (pthread_attr_init(&attr) ||
	    pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN) ||
	    create(&t, &attr, tiny, malloc(64)) || pthread_join(t, NULL))
		return 1;
	printf("tiny-stack: a thread of %d KiB of stack%s allocated for 1.5 s\n",
	       (int)(PTHREAD_STACK_MIN / 1024), raw ? ", made by libc," : "");
	return 0;
}

static void *report_affinity(void *unused)
{
	cpu_set_t s;

	usleep(20000); /* the creator's call comes first */
	if (pthread_getaffinity_np(pthread_self(), sizeof(s), &s))
		return (void *)-1;
	return (void *)(intptr_t)CPU_COUNT(&s);
}

static int test_setaffinity(int n)
{
	cpu_set_t all;
	int narrowed = 0;

	if (sched_getaffinity(0, sizeof(all), &all) || CPU_COUNT(&all) < 2)
		return 1;
	for (int i = 0; i < n; i++) {
		pthread_t t;
		void *cpus;

		if (pthread_create(&t, NULL, report_affinity, NULL) ||
		    pthread_setaffinity_np(t, sizeof(all), &all) || pthread_join(t, &cpus))
			return 1;
		narrowed += (intptr_t)cpus != CPU_COUNT(&all);
	}
	printf("setaffinity: %d of %d threads lost the CPUs their creator gave them\n",
	       narrowed, n);
	return narrowed != 0;
}

static int test_default_affinity(void)
{
	pthread_attr_t a;
	cpu_set_t all;
	pthread_t t;
	void *cpus;

	if (sched_getaffinity(0, sizeof(all), &all) || CPU_COUNT(&all) < 2 ||
	    pthread_attr_init(&a) || pthread_attr_setaffinity_np(&a, sizeof(all), &all) ||
	    pthread_setattr_default_np(&a) || check_pin(0) ||
	    pthread_create(&t, NULL, report_affinity, NULL) || pthread_join(t, &cpus))
		return 1;
	printf("default-affinity: a thread made with the default attribute (every CPU, %d) "
	       "has %d\n", CPU_COUNT(&all), (int)(intptr_t)cpus);
	return (intptr_t)cpus != CPU_COUNT(&all);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "share") == 0)
		return test_share(argv[2]);
	if (argc == 3 && strcmp(argv[1], "c11") == 0)
		return test_c11(atoi(argv[2]));
	if (argc == 3 && strcmp(argv[1], "moves") == 0)
		return test_moves(atoi(argv[2]));
	if (argc == 3 && strcmp(argv[1], "setaffinity") == 0)
		return test_setaffinity(atoi(argv[2]));
	if (argc != 2) {
		fprintf(stderr, "usage: %s switch|home|realloc|first|start|handed|"
			"tiny-stack|tiny-stack-raw|share shared|separate|c11 N|moves N|\n"
			"localalloc|setaffinity N|default-affinity\n",
			argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "switch") == 0)
		return test_switch();
	if (strcmp(argv[1], "home") == 0)
		return test_home();
	if (strcmp(argv[1], "realloc") == 0)
		return test_realloc();
	if (strcmp(argv[1], "first") == 0)
		return test_first();
	if (strcmp(argv[1], "handed") == 0)
		return test_handed();
	if (strcmp(argv[1], "localalloc") == 0) {
		/* numactl --localalloc: MPOL_LOCAL (4), before the shim saw it. */
		if (syscall(SYS_set_mempolicy, 4, NULL, 0))
			return 1;
		return test_share("shared");
	}
	if (strcmp(argv[1], "default-affinity") == 0)
		return test_default_affinity();
	if (strcmp(argv[1], "tiny-stack") == 0)
		return test_tiny_stack(false);
	if (strcmp(argv[1], "tiny-stack-raw") == 0)
		return test_tiny_stack(true);
	if (strcmp(argv[1], "start") == 0) {
		/* Only the start and the exit (je-start.test), and one open
		 * and close through libc's functions, for a preloaded
		 * alloc_io.so to show it was in use. */
		int fd = open("/dev/null", O_RDONLY);

		return fd >= 0 && close(fd) == 0 ? 0 : 2;
	}
	fprintf(stderr, "%s: unknown test %s\n", argv[0], argv[1]);
	return 2;
}
