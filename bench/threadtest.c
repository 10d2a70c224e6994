/* threadtest: per-thread churn, after Hoard's threadtest (Berger et al.,
 * ASPLOS 2000). Each thread repeatedly allocates a batch of small blocks
 * (8..256 bytes, log-uniform), writes them, and frees the whole batch. No
 * block crosses threads: this is the per-thread fast path and how well the
 * allocator scales it. */
#include "bench/harness.h"

#include <stdlib.h>

#define NAME "threadtest"
#define BATCH 4000

static struct bench_opts opts;
static struct bench_work work;
static uint64_t rounds;

static void *worker(void *arg)
{
	int id = *(int *)arg;
	uint64_t seed = bench_seed(&opts, (uint64_t)id), bytes = 0, check = 0;
	void **p = bench_xmalloc(NAME, BATCH * sizeof(*p));

	for (uint64_t r = 0; r < rounds; r++) {
		for (int i = 0; i < BATCH; i++) {
			size_t sz = bench_logsize(&seed, 8, 256);

			p[i] = bench_xmalloc(NAME, sz);
			bench_fill(p[i], sz, r + (uint64_t)i);
			bytes += sz;
		}
		for (int i = 0; i < BATCH; i++) {
			check += bench_peek(p[i]);
			free(p[i]);
		}
	}
	free(p);
	bench_add(&work, 2 * BATCH * rounds, bytes, check);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, NAME,
		   "Per-thread churn: each thread allocates a batch of small blocks,\n"
		   "writes them and frees them all, over and over.", 2, &opts);
	rounds = bench_scaled(&opts, 2400) / (uint64_t)opts.threads;
	if (rounds == 0)
		rounds = 1;
	bench_run_indexed(NAME, &opts, worker, &work);
	return 0;
}
