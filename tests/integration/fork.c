/* fork under the shim.
 *
 *   fork blocks   threads allocate patterned blocks and wait; the process
 *                 forks; the child checks, reallocs and frees the parent's
 *                 blocks (including ones other threads allocated), starts a
 *                 thread of its own and exits 0; the parent carries on.
 *   fork busy     threads allocate/free/realloc without pause while the
 *                 main thread and one of the workers fork again and again;
 *                 each child allocates and must exit 0 within a time limit
 *                 (a deadlock inherited from a lock held at fork time fails
 *                 the test instead of hanging it).
 *   fork single [P C]
 *                 a process that has never had a second thread forks:
 *                 numashim runs no allocator fork handler then (shim/je.c).
 *                 The children check, realloc and free the parent's
 *                 blocks, fork a grandchild that allocates, and start a
 *                 thread of their own. Page faults per fork whose child
 *                 exits at once: given glibc's (P in the parent, C in the
 *                 child; "fork faults" without the shim prints them),
 *                 parent and child must stay near them; and the parent
 *                 must fault in fewer than once a second thread runs, when
 *                 the handlers release jemalloc's locks in it.
 *   fork faults   prints P and C for this process (single-threaded).
 *   fork moves    (2 emulated nodes, CPUs 0 and 1 on different ones) a
 *                 thread frees 32 MiB on node 0, then moves to CPU 1: the
 *                 arena it leaves keeps its free pages (numashim's phantom
 *                 thread stops jemalloc purging an arena its last thread
 *                 leaves), in a multi-threaded process and in its forked
 *                 child, where jemalloc's fork handler resets the counts.
 */
#include "tests/integration/check.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>

#define NTHREADS 4
#define PER_THREAD 256
#define CHILD_SECONDS 20
/* Page faults a single-threaded fork may take over glibc's (4 KiB pages).
 * jemalloc's fork handlers write 12 pages or more in the parent and 13 or
 * more in the child (more with more arenas); numashim's own child handler
 * about 8 (its state for the child, the statistics' first of all). With a
 * second thread, those handlers' parent side is back: glibc's own fork
 * adds 4 there (2 -> 6), numashim's 14 or more (3 -> 17). Larger pages
 * hold more of each: fewer faults, so a smaller margin. */
#define PARENT_SLACK 6
#define CHILD_SLACK 16
#define THREAD_MARGIN (sysconf(_SC_PAGESIZE) > 4096 ? 2L : 8L)

static void *blocks[NTHREADS][PER_THREAD];
static pthread_barrier_t made, done;
static volatile int stop;
static int worker_forks;

static size_t block_size(int t, int i)
{
	static const size_t sizes[] = { 8, 40, 200, 1000, 5000, 40000, 300000, 2 << 20 };
	return sizes[(t * 7 + i) % 8] + (size_t)i;
}

static uintptr_t block_seed(int t, int i)
{
	return (uintptr_t)(t * 1000 + i);
}

static void *child_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		void *p = malloc((size_t)(i * 13 % 9000) + 1);
		if (p == NULL)
			return (void *)1;
		memset(p, 0x5A, (size_t)(i * 13 % 9000) + 1);
		free(p);
	}
	return NULL;
}

/* Work a child does: check the parent's blocks, realloc some, free all,
 * allocate anew, including from a thread of its own.  Returns the number of
 * problems (also printed). */
static int child_work(int parent_threads)
{
	int bad = 0;

	alarm(CHILD_SECONDS);
	for (int t = 0; t < parent_threads; t++)
		for (int i = 0; i < PER_THREAD; i++) {
			size_t n = block_size(t, i), bad_at = pat_find_bad(blocks[t][i], n, block_seed(t, i));
			if (bad_at != (size_t)-1) {
				printf("FAIL child: parent's block (thread %d, #%d, %zu bytes): expected "
				       "its pattern, got a difference at offset %zu\n", t, i, n, bad_at);
				bad++;
				continue;
			}
			if (i % 2) {
				size_t m = n * 3 + 17;
				char *q = realloc(blocks[t][i], m);
				if (q == NULL || pat_find_bad(q, n, block_seed(t, i)) != (size_t)-1) {
					printf("FAIL child: realloc(parent's block, %zu -> %zu): expected "
					       "contents kept, got %p\n", n, m, (void *)q);
					bad++;
					continue;
				}
				memset(q + n, 1, m - n);
				blocks[t][i] = q;
			}
			free(blocks[t][i]);
		}
	void *v[500];
	for (int i = 0; i < 500; i++) {
		v[i] = malloc((size_t)i * 31 + 1);
		if (v[i] == NULL) {
			printf("FAIL child: malloc(%d): expected a block, got NULL\n", i * 31 + 1);
			bad++;
			continue;
		}
		pat_fill(v[i], (size_t)i * 31 + 1, (uintptr_t)i);
	}
	for (int i = 0; i < 500; i++) {
		if (v[i] && pat_find_bad(v[i], (size_t)i * 31 + 1, (uintptr_t)i) != (size_t)-1) {
			printf("FAIL child: its own block #%d: expected its pattern intact\n", i);
			bad++;
		}
		free(v[i]);
	}
	pthread_t th;
	void *rc = (void *)1;
	if (pthread_create(&th, NULL, child_thread, NULL) != 0 || pthread_join(th, &rc) != 0 || rc) {
		printf("FAIL child: a thread started after fork could not allocate\n");
		bad++;
	}
	return bad;
}

/* Waits for a child; a child that does not end within the limit is killed
 * and reported. */
static void wait_child(pid_t pid, const char *what)
{
	int st = 0;
	for (int tries = 0; tries < (CHILD_SECONDS + 10) * 100; tries++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: expected the child to exit 0, "
			      "got %s %d%s", what, WIFEXITED(st) ? "exit" : "signal",
			      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
			      WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (SIGALRM: deadlocked)" : "");
			return;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	check_fail(__FILE__, __LINE__, "%s: expected the child to exit 0, got no exit after %d s "
		   "(deadlock?); killed it", what, CHILD_SECONDS + 10);
}

static void *maker(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		blocks[t][i] = malloc(block_size(t, i));
		CHECK(blocks[t][i] != NULL, "thread %d: malloc(%zu): expected a block, got NULL", t,
		      block_size(t, i));
		if (blocks[t][i])
			pat_fill(blocks[t][i], block_size(t, i), block_seed(t, i));
	}
	pthread_barrier_wait(&made);
	pthread_barrier_wait(&done); /* stay alive across the fork */
	return NULL;
}

static void test_blocks(void)
{
	pthread_t th[NTHREADS];

	pthread_barrier_init(&made, NULL, NTHREADS + 1);
	pthread_barrier_init(&done, NULL, NTHREADS + 1);
	for (int t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, maker, (void *)(intptr_t)t);
	pthread_barrier_wait(&made);
	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();
		if (pid == 0)
			exit(child_work(NTHREADS) ? 1 : 0);
		CHECK(pid > 0, "fork(): expected a child, got %d (errno %d)", (int)pid, errno);
		if (pid > 0)
			wait_child(pid, "fork with the parent's blocks");
	}
	/* the parent carries on with its own copies */
	for (int t = 0; t < NTHREADS; t++)
		for (int i = 0; i < PER_THREAD; i++) {
			size_t n = block_size(t, i), bad = pat_find_bad(blocks[t][i], n, block_seed(t, i));
			CHECK(bad == (size_t)-1, "parent after fork: block (thread %d, #%d): expected its "
			      "pattern, got a difference at offset %zu", t, i, bad);
			blocks[t][i] = realloc(blocks[t][i], n + 100);
			free(blocks[t][i]);
		}
	pthread_barrier_wait(&done);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	printf("fork blocks: 3 children checked, realloc'd and freed the parent's blocks\n");
}

static void *churn(void *arg)
{
	int t = (int)(intptr_t)arg;
	void *mine[64] = { 0 };
	uint64_t x = 88172645463325252ull + (uint64_t)t;
	unsigned long n = 0;

	while (!stop) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		size_t k = x % 64, size = (x >> 8) % ((x & 0x100000) ? 300000 : 2000) + 1;
		if (mine[k] == NULL)
			mine[k] = (x & 1) ? malloc(size) : calloc(1, size);
		else if (x & 2)
			mine[k] = realloc(mine[k], size);
		else {
			free(mine[k]);
			mine[k] = NULL;
		}
		if (mine[k])
			((char *)mine[k])[0] = 1;
		/* one worker also forks, so forks come from a non-main thread too */
		if (t == 0 && ++n % 20000 == 0) {
			pid_t pid = fork();
			if (pid == 0)
				_exit(child_work(0) ? 1 : 0);
			if (pid > 0) {
				wait_child(pid, "fork from a worker thread while others allocate");
				__atomic_add_fetch(&worker_forks, 1, __ATOMIC_RELAXED);
			}
		}
	}
	for (int k = 0; k < 64; k++)
		free(mine[k]);
	return NULL;
}

static void test_busy(int forks)
{
	pthread_t th[NTHREADS];

	for (int t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, churn, (void *)(intptr_t)t);
	for (int i = 0; i < forks; i++) {
		pid_t pid = fork();
		if (pid == 0)
			exit(child_work(0) ? 1 : 0);
		CHECK(pid > 0, "fork(): expected a child, got %d (errno %d)", (int)pid, errno);
		if (pid > 0)
			wait_child(pid, "fork from main while threads allocate");
	}
	while (__atomic_load_n(&worker_forks, __ATOMIC_RELAXED) < 3)
		usleep(10000);
	stop = 1;
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	printf("fork busy: %d children forked from main and %d from a worker while %d threads "
	       "allocated\n", forks, worker_forks, NTHREADS);
}

/* Page faults of one fork whose child exits at once: the parent's (over
 * the fork and the wait) and the child's. */
static void fork_faults(long *parent, long *child)
{
	struct rusage before, after, ch;
	int st = 0;
	pid_t pid;

	getrusage(RUSAGE_SELF, &before);
	pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK(pid > 0, "fork(): expected a child, got %d (errno %d)", (int)pid, errno);
	if (pid > 0)
		wait4(pid, &st, 0, &ch);
	getrusage(RUSAGE_SELF, &after);
	*parent = after.ru_minflt - before.ru_minflt;
	*child = pid > 0 ? ch.ru_minflt : 0;
}

static int cmp_long(const void *a, const void *b)
{
	return (*(const long *)a > *(const long *)b) - (*(const long *)a < *(const long *)b);
}

#define FAULT_ROUNDS 21

/* Median page faults per fork (parent, child). */
static void median_faults(long *parent, long *child)
{
	long p[FAULT_ROUNDS], c[FAULT_ROUNDS];

	for (int i = 0; i < FAULT_ROUNDS; i++) {
		void *b = malloc(100 + (size_t)i); /* the parent's heap in use between forks */

		fork_faults(&p[i], &c[i]);
		free(b);
	}
	qsort(p, FAULT_ROUNDS, sizeof(long), cmp_long);
	qsort(c, FAULT_ROUNDS, sizeof(long), cmp_long);
	*parent = p[FAULT_ROUNDS / 2];
	*child = c[FAULT_ROUNDS / 2];
}

static void *parked(void *arg)
{
	pthread_barrier_wait(arg);
	return NULL;
}

/* The work of a child of a single-threaded process: its parent's blocks,
 * a grandchild forked while the child is single-threaded too, then the
 * rest of child_work (a thread of its own among it). */
static int single_child(void)
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0)
		_exit(child_work(1) ? 1 : 0);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("FAIL child: a grandchild forked while single-threaded: expected exit 0, "
		       "got status %#x (fork %d)\n", st, (int)pid);
		return 1;
	}
	return child_work(1);
}

static void test_single(long base_p, long base_c)
{
	long p1, c1, pn, cn;
	pthread_barrier_t go;
	pthread_t th;

	if (!__libc_single_threaded) {
		check_fail(__FILE__, __LINE__, "fork single: expected a process that never had a "
			   "second thread (__libc_single_threaded), got one that had");
		return;
	}
	for (int i = 0; i < PER_THREAD; i++) {
		blocks[0][i] = malloc(block_size(0, i));
		CHECK(blocks[0][i] != NULL, "malloc(%zu): expected a block, got NULL", block_size(0, i));
		if (blocks[0][i] == NULL)
			return;
		pat_fill(blocks[0][i], block_size(0, i), block_seed(0, i));
	}
	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();
		if (pid == 0)
			exit(single_child() ? 1 : 0);
		CHECK(pid > 0, "fork(): expected a child, got %d (errno %d)", (int)pid, errno);
		if (pid > 0)
			wait_child(pid, "fork of a single-threaded process");
	}
	median_faults(&p1, &c1);
	pthread_barrier_init(&go, NULL, 2);
	if (pthread_create(&th, NULL, parked, &go) != 0) {
		check_fail(__FILE__, __LINE__, "pthread_create: expected a thread, got none");
		return;
	}
	median_faults(&pn, &cn);
	pthread_barrier_wait(&go);
	pthread_join(th, NULL);
	for (int i = 0; i < PER_THREAD; i++) {
		size_t n = block_size(0, i), bad = pat_find_bad(blocks[0][i], n, block_seed(0, i));
		CHECK(bad == (size_t)-1, "parent after fork: block #%d: expected its pattern, got a "
		      "difference at offset %zu", i, bad);
		free(blocks[0][i]);
	}
	printf("fork single: 3 children (each with a grandchild) checked, realloc'd and freed the "
	       "parent's blocks; page faults per fork, median of %d: parent %ld single-threaded, "
	       "%ld with a second thread; child %ld and %ld\n", FAULT_ROUNDS, p1, pn, c1, cn);
	if (base_p >= 0)
		CHECK(p1 <= base_p + PARENT_SLACK, "fork single: expected the single-threaded "
		      "parent to fault in at most %d pages more per fork than under glibc (%ld; no "
		      "allocator locks to release), got %ld", PARENT_SLACK, base_p, p1);
	if (base_c >= 0)
		CHECK(c1 <= base_c + CHILD_SLACK, "fork single: expected its child to fault in at "
		      "most %d pages more than under glibc (%ld; no allocator locks to set up anew), "
		      "got %ld", CHILD_SLACK, base_c, c1);
	CHECK(p1 + THREAD_MARGIN <= pn, "fork single: expected the parent to fault in at least "
	      "%ld pages more per fork once it has a second thread (jemalloc's locks taken and "
	      "released), got %ld single-threaded and %ld", THREAD_MARGIN, p1, pn);
}

#define MOVE_BLOCKS 8192 /* of 4000 bytes: 32 MiB */

static bool pin_to(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return sched_setaffinity(0, sizeof(s), &s) == 0;
}

/* Frees 32 MiB on CPU 0's node, moves to CPU 1's: what the resident
 * anonymous memory lost at the move, in KiB. */
static long free_and_move(void)
{
	static void *p[MOVE_BLOCKS];
	long before;

	CHECK(pin_to(0), "fork moves: cannot pin to CPU 0");
	for (int i = 0; i < MOVE_BLOCKS; i++) {
		p[i] = malloc(4000);
		CHECK(p[i] != NULL, "fork moves: malloc failed");
		if (p[i] == NULL)
			return 0;
		memset(p[i], 1, 4000);
	}
	for (int i = 0; i < MOVE_BLOCKS; i++)
		free(p[i]);
	before = status_kib("RssAnon");
	CHECK(pin_to(1), "fork moves: cannot pin to CPU 1");
	free(HIDE(malloc(100)));
	return before - status_kib("RssAnon");
}

static void *idle(void *arg)
{
	return arg;
}

static void test_moves(void)
{
	pthread_t t;
	long lost;
	int status;
	pid_t child;

	/* A second thread: forks take the allocator's fork handlers. */
	pthread_create(&t, NULL, idle, NULL);
	pthread_join(t, NULL);
	lost = free_and_move();
	printf("fork moves: parent: %ld KiB lost at the move\n", lost);
	CHECK(lost < 8192, "fork moves: the parent's move purged %ld KiB of "
	      "the arena it left", lost);
	child = fork();
	if (child == 0) {
		lost = free_and_move();
		printf("fork moves: child: %ld KiB lost at the move\n", lost);
		CHECK(lost < 8192, "fork moves: a forked child's move purged %ld "
		      "KiB of the arena it left (its phantom thread was lost)", lost);
		fflush(stdout);
		_exit(check_failures ? 1 : 0);
	}
	CHECK(child > 0 && waitpid(child, &status, 0) == child &&
	      WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "fork moves: the child failed");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	deadlock_guard(240);
	if (argc >= 2 && strcmp(argv[1], "blocks") == 0)
		test_blocks();
	else if (argc >= 2 && strcmp(argv[1], "single") == 0)
		test_single(argc > 3 ? atol(argv[2]) : -1, argc > 3 ? atol(argv[3]) : -1);
	else if (argc >= 2 && strcmp(argv[1], "faults") == 0) {
		long p, c;

		median_faults(&p, &c);
		printf("%ld %ld\n", p, c);
	}
	else if (argc >= 2 && strcmp(argv[1], "busy") == 0)
		test_busy(argc > 2 ? atoi(argv[2]) : 100);
	else if (argc >= 2 && strcmp(argv[1], "moves") == 0)
		test_moves();
	else {
		fprintf(stderr, "usage: %s blocks|busy [FORKS]|single [P C]|faults|moves\n",
			argv[0]);
		return 2;
	}
	CHECK_EXIT();
}
