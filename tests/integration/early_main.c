/* Checks the blocks that early.so's constructor allocated (possibly before
 * the shim initialised) and those of this program's own constructor: they
 * must hold their contents, report a sane usable size, and survive realloc
 * and free under the shim.
 *
 *   early_main   (with early.so and the shim in LD_PRELOAD, either order)
 *
 * Then, with a second thread running, it forks: early.so's atfork prepare
 * handler allocates, and its child handler makes a thread that allocates,
 * both registered before anything allocated. The fork must return (the
 * prepare handler ran with the allocator's locks held) and the child must
 * finish (it waited for ever on a lock still held from the fork). */
#include "tests/integration/check.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>

#define EARLY_N 8

static void *ctor_block, *ctor_big;

__attribute__((constructor)) static void main_ctor(void)
{
	ctor_block = malloc(HIDE((size_t)77));
	if (ctor_block)
		pat_fill(ctor_block, 77, 77);
	ctor_big = calloc(HIDE((size_t)1), 1 << 20);
	if (ctor_big)
		pat_fill(ctor_big, 1 << 20, 78);
}

static unsigned char early_byte(int k, size_t i)
{
	return (unsigned char)(k * 29 + i * 3 + 1);
}

static const size_t early_align[EARLY_N] = { 8, 16, 16, 256, 4096, 16, 64, 16 };

static void *idle(void *arg)
{
	pause();
	return arg;
}

static void fork_with_thread(void)
{
	int *arm = dlsym(RTLD_DEFAULT, "early_fork_thread");
	int *done = dlsym(RTLD_DEFAULT, "early_fork_thread_done");
	pthread_t th;
	pid_t pid;
	int st;

	if (arm == NULL || done == NULL || pthread_create(&th, NULL, idle, NULL)) {
		check_fail(__FILE__, __LINE__, "fork: expected early.so's handler and a thread");
		return;
	}
	*arm = 1;
	pid = fork();
	if (pid == 0) {
		alarm(10);
		_exit(*done ? 0 : 3);
	}
	*arm = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "fork: expected the child to make its handler's thread and exit 0, got status 0x%x%s",
	      pid > 0 ? st : -1, WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (hung)" : "");
}

int main(void)
{
	void **blocks = dlsym(RTLD_DEFAULT, "early_blocks");
	size_t *sizes = dlsym(RTLD_DEFAULT, "early_sizes");
	int *ran = dlsym(RTLD_DEFAULT, "early_ran");

	setvbuf(stdout, NULL, _IOLBF, 0);
	deadlock_guard(60);
	if (!served_by_shim("malloc"))
		check_failures++;
	if (blocks == NULL || sizes == NULL || ran == NULL || !*ran) {
		printf("FAIL: early.so's constructor did not run (is it in LD_PRELOAD?)\n");
		return 1;
	}
	for (int k = 0; k < EARLY_N; k++) {
		unsigned char *p = blocks[k];
		size_t n = sizes[k];
		CHECK(p != NULL, "early block %d (%zu bytes): expected the constructor's allocation, got NULL",
		      k, n);
		if (p == NULL)
			continue;
		CHECK(((uintptr_t)p & (early_align[k] - 1)) == 0, "early block %d: expected %zu-byte "
		      "alignment, got %p", k, early_align[k], (void *)p);
		size_t u = malloc_usable_size(p);
		CHECK(u >= n, "malloc_usable_size(early block %d): expected >= %zu, got %zu", k, n, u);
		for (size_t i = 0; i < n; i++)
			if (p[i] != early_byte(k, i)) {
				check_fail(__FILE__, __LINE__, "early block %d: expected its contents, got "
					   "0x%02x at offset %zu", k, p[i], i);
				break;
			}
		if (k % 2 == 0) {
			unsigned char *q = realloc(p, n * 4 + 1000);
			CHECK(q != NULL, "realloc(early block %d, %zu): expected a block, got NULL", k,
			      n * 4 + 1000);
			if (q == NULL)
				continue;
			for (size_t i = 0; i < n; i++)
				if (q[i] != early_byte(k, i)) {
					check_fail(__FILE__, __LINE__, "realloc(early block %d): expected "
						   "contents kept, got 0x%02x at offset %zu", k, q[i], i);
					break;
				}
			p = q;
		}
		free(p);
		blocks[k] = NULL;
	}
	size_t bad = ctor_block ? pat_find_bad(ctor_block, 77, 77) : 0;
	CHECK(bad == (size_t)-1, "block from this program's constructor: expected its contents, "
	      "got %s at %zu", ctor_block ? "a difference" : "NULL", bad);
	bad = ctor_big ? pat_find_bad(ctor_big, 1 << 20, 78) : 0;
	CHECK(bad == (size_t)-1, "1 MiB calloc from this program's constructor: expected its "
	      "contents, got %s at %zu", ctor_big ? "a difference" : "NULL", bad);
	ctor_block = realloc(ctor_block, 10000);
	free(ctor_block);
	free(ctor_big);
	fork_with_thread();
	/* the heap still works after all that */
	for (int i = 0; i < 10000; i++)
		free(malloc((size_t)i % 3000 + 1));
	printf("early: %d blocks from the preloaded constructor and 2 from this program's checked\n",
	       EARLY_N);
	CHECK_EXIT();
}
