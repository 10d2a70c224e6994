/* A library whose constructor allocates: preloaded next to the shim, in
 * either order, so that (in one of them) its constructor calls malloc before
 * the shim's own constructor has run.  It keeps its blocks in globals for
 * early_main to check, realloc and free. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EARLY_N 8

__attribute__((visibility("default"))) void *early_blocks[EARLY_N];
__attribute__((visibility("default"))) size_t early_sizes[EARLY_N];
__attribute__((visibility("default"))) int early_ran;
/* Set by early_main: the prepare handler below allocates, and the child
 * handler makes a thread that allocates and joins it, as a library's may.
 * They are registered first thing in this constructor, before anything
 * allocated (in one preload order, before the shim's constructor ran):
 * jemalloc must still come first. */
__attribute__((visibility("default"))) int early_fork_thread;
__attribute__((visibility("default"))) int early_fork_thread_done;

static void *fork_thread(void *arg)
{
	free(malloc(100));
	return arg;
}

static void preparing(void)
{
	if (early_fork_thread)
		free(malloc(1 << 20));
}

static void forked(void)
{
	pthread_t th;

	if (early_fork_thread && pthread_create(&th, NULL, fork_thread, NULL) == 0 &&
	    pthread_join(th, NULL) == 0)
		early_fork_thread_done = 1;
}

static unsigned char early_byte(int k, size_t i)
{
	return (unsigned char)(k * 29 + i * 3 + 1);
}

__attribute__((constructor(101))) static void early_ctor(void)
{
	void *p;

	pthread_atfork(preparing, NULL, forked);
	early_blocks[0] = malloc(early_sizes[0] = 24);
	early_blocks[1] = calloc(10, early_sizes[1] = 100);
	early_blocks[1] = realloc(early_blocks[1], early_sizes[1] = 5000);
	early_blocks[2] = realloc(NULL, early_sizes[2] = 333);
	if (posix_memalign(&p, 256, early_sizes[3] = 700) == 0)
		early_blocks[3] = p;
	early_blocks[4] = aligned_alloc(4096, early_sizes[4] = 8192);
	early_blocks[5] = malloc(early_sizes[5] = 3 << 20);
	early_blocks[6] = memalign(64, early_sizes[6] = 64);
	early_blocks[7] = malloc(early_sizes[7] = 1);
	early_blocks[7] = realloc(early_blocks[7], early_sizes[7] = 100000);
	free(malloc(50));
	free(calloc(3, 3));
	for (int k = 0; k < EARLY_N; k++)
		if (early_blocks[k])
			for (size_t i = 0; i < early_sizes[k]; i++)
				((unsigned char *)early_blocks[k])[i] = early_byte(k, i);
	early_ran = 1;
}
