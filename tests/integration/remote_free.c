/*
 * Remote frees under an emulated topology (NUMASHIM_FAKE_NODES=2 on a host
 * with at least 2 CPUs: CPU 0 is virtual node 0, CPU 1 virtual node 1).
 * A small block of node 0 freed by a thread on CPU 1 waits in that thread's
 * list, then on node 0's stack, until a node 0 thread takes it into its own
 * cache (shim/remote.c). These check that every block gets there, whatever
 * the threads do meanwhile.
 *
 *   usage: remote_free reuse|reuse-640|own-policy|exit|idle-home|handoff|
 *                      exit-drain
 *   reuse:     main (CPU 0) allocates 124 blocks of 48 bytes; a thread on
 *              CPU 1 frees them and keeps running; main must get at least
 *              90 % of them back from its next 124 allocations of that
 *              size (they came home, into its cache). Plain jemalloc
 *              keeps them in the freeing thread's cache: it fails this.
 *   reuse-640: the same with 62 blocks of 640 bytes (a batch's count,
 *              40 KiB: more than a home's stack takes); main must get
 *              back at least 46, of the 51 that make 32 KiB. A batch
 *              that filled its 62 places before it was sent was refused
 *              even by an empty stack, for every size above 528 bytes:
 *              main got none.
 *   own-policy: reuse with 40 blocks (less than a batch), the CPU 1
 *              thread made while main had a memory policy (a raw
 *              set_mempolicy, which the thread inherits: numashim leaves
 *              it off its arenas): its batch waited for its end, as no
 *              activity callback of numashim's came to send it; main got
 *              none while it ran.
 *   exit:      the same with 40 blocks (less than a list), the CPU 1
 *              thread ending right after its frees: its list is sent as
 *              it ends, and main gets them all back.
 *   idle-home: main allocates 3 MiB of 1 KiB blocks and then waits
 *              without allocating; the CPU 1 thread frees them and goes
 *              on allocating for 1.5 s; then malloc_trim must give at
 *              least 2 MiB back to the system: blocks a home thread does
 *              not take go home through jemalloc within about a second.
 *   handoff:   a producer on CPU 0 hands 2,000,000 blocks of 16..1 KiB
 *              through a ring to a consumer on CPU 1, which checks and
 *              frees each: contents intact (no block handed out twice),
 *              and the peak RSS stays under 64 MiB (about 1 GiB went
 *              through: no block is lost on the way home).
 *   exit-drain: 20,000 threads on CPU 0 in turn each allocate 240 blocks
 *              that a thread on CPU 1 frees (node 0's stack then holds
 *              batches), and end with a thread-local destructor that
 *              allocates 256 KiB (its activity callback takes the stack
 *              after numashim ended the thread's remote frees). RSS may
 *              not grow by more than 4 MiB from the 2,000th thread on: the
 *              batches emptied there were kept by the ending thread, 2 KiB
 *              each, until batching stopped for good at 64 MiB of them.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/integration/check.h"

#define N 124     /* two of shim/remote.c's batches */
#define EXIT_N 40 /* less than one */
#define BLOCK 48
#define MID_N 62      /* one batch's count */
#define MID_BLOCK 640 /* the first size class above 32 KiB / 62 */

static void *blocks[N];
/* Addresses kept as integers: a pointer compared after free() lets the
 * compiler assume the answer. */
static uintptr_t freed[N];
static int nblocks;
static size_t block_size = BLOCK;
static bool own_policy; /* the freeing thread inherits a memory policy */
static volatile int stage;

/* Enough allocation for jemalloc's activity callback (about every 64 KiB
 * of a thread's allocations) to run several times. */
static void churn(int times)
{
	for (int i = 0; i < times; i++)
		check_churn(4096);
}

static void wait_stage(int s)
{
	while (__atomic_load_n(&stage, __ATOMIC_ACQUIRE) < s)
		sched_yield();
}

static void set_stage(int s)
{
	__atomic_store_n(&stage, s, __ATOMIC_RELEASE);
}

/* The CPU 1 thread of reuse and exit: frees main's blocks; for reuse,
 * allocates enough to send what its batch holds, then stays until main is
 * done (stage 2). */
static void *freer(void *arg)
{
	bool stay = arg != NULL;

	if (check_pin(1))
		exit(1);
	churn(64);
	for (int i = 0; i < nblocks; i++) {
		freed[i] = (uintptr_t)blocks[i];
		free(blocks[i]);
	}
	if (!stay)
		return NULL;
	churn(64);
	set_stage(1);
	wait_stage(2);
	return NULL;
}

/* Blocks of one size class (block_size), few enough for main's cache to
 * hold them all: its next allocations of that size hand them out again. */
static int back_home(bool stay, int n, int want)
{
	pthread_t t;
	int got = 0;

	nblocks = n;
	if (check_pin(0))
		return 1;
	for (int i = 0; i < n; i++) {
		if ((blocks[i] = malloc(block_size)) == NULL)
			return 1;
		memset(blocks[i], 0x5a, block_size);
	}
	/* Raw system calls: main itself stays on numashim's arenas. */
	if (own_policy) {
		unsigned long node0 = 1;

		if (syscall(SYS_set_mempolicy, 1 /* MPOL_PREFERRED */, &node0,
			    sizeof(node0) * 8)) {
			perror("set_mempolicy");
			return 1;
		}
	}
	if (pthread_create(&t, NULL, freer, stay ? (void *)1 : NULL))
		return 1;
	if (own_policy && syscall(SYS_set_mempolicy, 0 /* MPOL_DEFAULT */, NULL, 0)) {
		perror("set_mempolicy");
		return 1;
	}
	if (stay)
		wait_stage(1);
	else
		pthread_join(t, NULL);
	churn(64); /* main's activity callback takes node 0's stack */
	for (int i = 0; i < n; i++) {
		blocks[i] = malloc(block_size);
		for (int j = 0; j < n; j++)
			if ((uintptr_t)blocks[i] == freed[j]) {
				got++;
				break;
			}
	}
	set_stage(2);
	if (stay)
		pthread_join(t, NULL);
	printf("%s, %zu bytes: main got %d of the %d blocks the CPU 1 thread "
	       "freed back\n", own_policy ? "own-policy" : stay ? "reuse" : "exit", block_size, got, n);
	CHECK(got >= want, "blocks back home: expected at least %d, got %d",
	      want, got);
	return check_failures ? 1 : 0;
}

/* ------------------------------------------------------------ idle-home */

#define IDLE_BLOCKS 3072 /* of 1 KiB: 3 MiB */

static void *idle_blocks[IDLE_BLOCKS];

static void *idle_freer(void *unused)
{
	struct timespec t0, t;

	if (check_pin(1))
		exit(1);
	for (int i = 0; i < IDLE_BLOCKS; i++)
		free(idle_blocks[i]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		churn(256);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 +
		 (t.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
	return NULL;
}

static int idle_home(void)
{
	pthread_t t;
	long before, after;

	if (check_pin(0))
		return 1;
	/* Blocks as main's are: 1 KiB, written, kept. */
	for (int i = 0; i < IDLE_BLOCKS; i++) {
		if ((idle_blocks[i] = malloc(1024)) == NULL)
			return 1;
		memset(idle_blocks[i], 1, 1024);
	}
	malloc_trim(0);
	before = status_kib("VmRSS");
	/* main waits in pthread_join: it allocates nothing meanwhile. */
	if (pthread_create(&t, NULL, idle_freer, NULL) || pthread_join(t, NULL))
		return 1;
	malloc_trim(0);
	after = status_kib("VmRSS");
	printf("idle-home: RSS %ld KiB with 3 MiB of main's blocks, %ld KiB "
	       "after the CPU 1 thread freed them and malloc_trim\n",
	       before, after);
	CHECK(before > 0 && after > 0 && before - after >= 2048,
	      "RSS given back: expected at least 2048 KiB, got %ld", before - after);
	return check_failures ? 1 : 0;
}

/* ------------------------------------------------------------ exit-drain */

#define DRAIN_THREADS 20000
#define DRAIN_BLOCKS 240 /* about 4 batches */

extern int __cxa_thread_atexit_impl(void (*)(void *), void *, void *);
extern void *__dso_handle;

static void *drain_blocks[DRAIN_BLOCKS];

/* Runs after the thread's start routine, as C++ thread_local destructors
 * do: after numashim's end of the thread (our trampoline's cleanup). */
static void drain_dtor(void *unused)
{
	churn(64);
}

static void *drain_sender(void *unused)
{
	if (check_pin(1))
		exit(1);
	for (;;) {
		wait_stage(1);
		if (__atomic_load_n(&stage, __ATOMIC_ACQUIRE) == 3)
			return NULL;
		for (int i = 0; i < DRAIN_BLOCKS; i++)
			free(drain_blocks[i]);
		churn(32); /* its callback sends the last batch */
		set_stage(2);
		while (__atomic_load_n(&stage, __ATOMIC_ACQUIRE) == 2)
			sched_yield();
	}
}

static void *drain_ender(void *unused)
{
	if (check_pin(0))
		exit(1);
	__cxa_thread_atexit_impl(drain_dtor, NULL, &__dso_handle);
	for (int i = 0; i < DRAIN_BLOCKS; i++)
		if ((drain_blocks[i] = malloc(64)) == NULL)
			exit(1);
	set_stage(1);
	wait_stage(2);
	return NULL;
}

static int exit_drain(void)
{
	pthread_t s, t;
	long base = 0, end;

	if (pthread_create(&s, NULL, drain_sender, NULL))
		return 1;
	for (int i = 0; i < DRAIN_THREADS; i++) {
		if (i == DRAIN_THREADS / 10)
			base = status_kib("VmRSS");
		set_stage(0);
		if (pthread_create(&t, NULL, drain_ender, NULL) ||
		    pthread_join(t, NULL))
			return 1;
	}
	set_stage(3);
	pthread_join(s, NULL);
	end = status_kib("VmRSS");
	printf("exit-drain: RSS %ld KiB after %d threads, %ld KiB after %d\n",
	       base, DRAIN_THREADS / 10, end, DRAIN_THREADS);
	CHECK(base > 0 && end > 0 && end - base < 4096,
	      "RSS growth over %d ending threads: expected under 4096 KiB, "
	      "got %ld", DRAIN_THREADS - DRAIN_THREADS / 10, end - base);
	return check_failures ? 1 : 0;
}

/* ------------------------------------------------------------ handoff */

#define RING 1024
#define HANDOFF 2000000

static void *ring[RING];
static unsigned long head, tail; /* producer writes head, consumer tail */

static size_t handoff_size(unsigned long i)
{
	return 16 + (size_t)(i * 2654435761u % 1009);
}

static void *consumer(void *unused)
{
	if (check_pin(1))
		exit(1);
	for (unsigned long i = 0; i < HANDOFF; i++) {
		unsigned char *b;
		size_t n = handoff_size(i);

		while (__atomic_load_n(&head, __ATOMIC_ACQUIRE) == i)
			sched_yield();
		b = ring[i % RING];
		if (memcmp(b, &i, sizeof(i)) != 0 || b[n - 1] != (unsigned char)i) {
			CHECK(0, "block %lu: expected its number, got other contents", i);
			exit(1);
		}
		free(b);
		__atomic_store_n(&tail, i + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int handoff(void)
{
	pthread_t t;
	long hwm;

	if (check_pin(0))
		return 1;
	if (pthread_create(&t, NULL, consumer, NULL))
		return 1;
	for (unsigned long i = 0; i < HANDOFF; i++) {
		size_t n = handoff_size(i);
		unsigned char *b = malloc(n);

		if (b == NULL)
			return 1;
		memcpy(b, &i, sizeof(i));
		b[n - 1] = (unsigned char)i;
		while (i - __atomic_load_n(&tail, __ATOMIC_ACQUIRE) >= RING)
			sched_yield();
		ring[i % RING] = b;
		__atomic_store_n(&head, i + 1, __ATOMIC_RELEASE);
	}
	pthread_join(t, NULL);
	hwm = status_kib("VmHWM");
	printf("handoff: %d blocks handed from CPU 0 to CPU 1, peak RSS %ld KiB\n",
	       HANDOFF, hwm);
	CHECK(hwm > 0 && hwm < 64 * 1024, "peak RSS: expected under 65536 KiB, "
	      "got %ld", hwm);
	return check_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "reuse") == 0)
		return back_home(true, N, N * 9 / 10);
	if (argc == 2 && strcmp(argv[1], "reuse-640") == 0) {
		block_size = MID_BLOCK;
		return back_home(true, MID_N, 46);
	}
	if (argc == 2 && strcmp(argv[1], "own-policy") == 0) {
		own_policy = true;
		return back_home(true, EXIT_N, EXIT_N * 9 / 10);
	}
	if (argc == 2 && strcmp(argv[1], "exit") == 0)
		return back_home(false, EXIT_N, EXIT_N);
	if (argc == 2 && strcmp(argv[1], "idle-home") == 0)
		return idle_home();
	if (argc == 2 && strcmp(argv[1], "handoff") == 0)
		return handoff();
	if (argc == 2 && strcmp(argv[1], "exit-drain") == 0)
		return exit_drain();
	fprintf(stderr, "usage: %s reuse|reuse-640|own-policy|exit|idle-home|"
		"handoff|exit-drain\n",
		argv[0]);
	return 2;
}
