/*
 * Keeps 2000 blocks of 4-12 KiB live to the end, all allocated from one
 * named function, for prof.test: under jemalloc's heap profiler
 * (MALLOC_CONF=prof:true,prof_final:true) the final profile must hold
 * them with stack traces that name leak_here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 2000

static void *volatile keep[N];

__attribute__((noinline)) void leak_here(void)
{
	for (int i = 0; i < N; i++) {
		keep[i] = malloc(4096 + (size_t)(i % 8) * 1024);
		if (keep[i] == NULL) {
			perror("malloc");
			exit(1);
		}
		memset(keep[i], 1, 64);
	}
}

int main(void)
{
	leak_here();
	printf("leak: %d blocks kept\n", N);
	return 0;
}
