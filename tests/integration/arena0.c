/*
 * arena0: what the main thread's freed large blocks leave resident. The
 * main thread allocates from jemalloc's arena 0, which jemalloc 5.3.0
 * makes before it reads the oversize threshold (the size from which a
 * freed run of coalesced pages is purged at once): arena 0 kept 8 MiB
 * where every other arena has numashim's threshold or the user's.
 *
 *   arena0 BLOCKS MIB
 * allocates BLOCKS blocks of MIB MiB in the main thread, writes every
 * page, frees them all and prints how many of their pages are still
 * resident (mincore: a purged page is not). Exits 2 if it could not run.
 * The test script says what it expects.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_BLOCKS 64

/* Resident pages of [p, p + len), adding the pages it spans to *total
 * (jemalloc starts a large block at a random cache line of its first
 * page). The range stays mapped after free: jemalloc keeps its extents'
 * address space. */
static long resident(void *p, size_t len, long page, long *total)
{
	uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(page - 1);
	size_t n = (len + ((uintptr_t)p - lo) + (size_t)page - 1) / (size_t)page;
	unsigned char *vec = calloc(n, 1);
	long count = 0;

	if (vec == NULL || mincore((void *)lo, n * (size_t)page, vec) != 0) {
		perror("arena0: mincore");
		exit(2);
	}
	for (size_t i = 0; i < n; i++)
		count += vec[i] & 1;
	*total += (long)n;
	free(vec);
	return count;
}

int main(int argc, char **argv)
{
	char *blk[MAX_BLOCKS];
	long page = sysconf(_SC_PAGESIZE), total = 0, kept = 0;
	int n = argc == 3 ? atoi(argv[1]) : 0;
	size_t size = argc == 3 ? (size_t)atoi(argv[2]) << 20 : 0;

	if (n < 1 || n > MAX_BLOCKS || size == 0) {
		fprintf(stderr, "usage: arena0 BLOCKS(1-%d) MIB\n", MAX_BLOCKS);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		blk[i] = malloc(size);
		if (blk[i] == NULL) {
			perror("arena0: malloc");
			return 2;
		}
		memset(blk[i], 1 + i, size);
	}
	for (int i = 0; i < n; i++)
		free(blk[i]);
	/* Counted after every free: a block's run may coalesce with the next
	 * one freed and be purged then. */
	for (int i = 0; i < n; i++)
		kept += resident(blk[i], size, page, &total);
	printf("arena0: %d blocks of %zu MiB freed: %ld of %ld pages resident (%ld %%)\n",
	       n, size >> 20, kept, total, kept * 100 / total);
	return 0;
}
