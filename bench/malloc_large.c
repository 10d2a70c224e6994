/* malloc-large: large-block alloc/free, after mimalloc-bench's malloc-large.
 *
 * Each thread keeps 20 live blocks of 64 KiB .. 8 MiB (log-uniform) and
 * replaces a random one at a time, touching every page of the new block
 * once (one write per 4 KiB) as a program that fills a buffer would. What
 * this measures is whether freed large blocks are reused warm or returned
 * to the kernel and faulted in again: the page faults dominate.
 */
#include "bench/harness.h"

#include <stdlib.h>

#define NAME "malloc-large"
#define LIVE 20
#define MIN_SIZE (64u << 10)
#define MAX_SIZE (8u << 20)
#define PAGE 4096

static struct bench_opts opts;
static struct bench_work work;
static uint64_t iters;

static void *worker(void *arg)
{
	int id = *(int *)arg;
	uint64_t seed = bench_seed(&opts, (uint64_t)id), bytes = 0, check = 0;
	char *live[LIVE] = {0};

	for (uint64_t i = 0; i < iters; i++) {
		int k = (int)(bench_rand(&seed) % LIVE);
		size_t sz = bench_logsize(&seed, MIN_SIZE, MAX_SIZE);

		if (live[k])
			check += (unsigned char)live[k][0];
		free(live[k]);
		live[k] = bench_xmalloc(NAME, sz);
		for (size_t off = 0; off < sz; off += PAGE)
			live[k][off] = (char)(i + off);
		bytes += sz;
	}
	for (int k = 0; k < LIVE; k++)
		free(live[k]);
	bench_add(&work, 2 * iters, bytes, check);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, NAME,
		   "Large blocks: each thread replaces random ones of 20 live blocks of\n"
		   "64 KiB..8 MiB and touches every page of each new block.", 1, &opts);
	iters = bench_scaled(&opts, 2000) / (uint64_t)opts.threads;
	if (iters == 0)
		iters = 1;   /* every loop once at the smallest scale */
	bench_run_indexed(NAME, &opts, worker, &work);
	return 0;
}
