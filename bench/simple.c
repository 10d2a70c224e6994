/* simple: the tight malloc/free loop of glibc's bench-malloc-simple and
 * mimalloc-bench's alloc-test in their smallest form. Each thread mallocs
 * 16 small blocks (16..512 bytes), writes a byte of each, frees them (in
 * allocation order every other round, reversed otherwise), and repeats. It
 * is what the allocator's fast path costs and nothing else: the closest
 * figure to the per-call overhead of a shim. */
#include "bench/harness.h"

#include <stdlib.h>

#define NAME "simple"
#define LIVE 16

static struct bench_opts opts;
static struct bench_work work;
static uint64_t rounds;

static void *worker(void *arg)
{
	int id = *(int *)arg;
	uint64_t seed = bench_seed(&opts, (uint64_t)id), bytes = 0, check = 0;
	unsigned char *p[LIVE];
	size_t sizes[64];

	/* Draw sizes once: the loop measures the allocator, not the RNG. */
	for (int i = 0; i < 64; i++)
		sizes[i] = bench_logsize(&seed, 16, 512);
	for (uint64_t r = 0; r < rounds; r++) {
		for (int i = 0; i < LIVE; i++) {
			size_t sz = sizes[(r + (uint64_t)i * 7) & 63];

			p[i] = bench_xmalloc(NAME, sz);
			p[i][0] = (unsigned char)r;
			bytes += sz;
		}
		if (r & 1)
			for (int i = 0; i < LIVE; i++)
				check += p[i][0], free(p[i]);
		else
			for (int i = LIVE - 1; i >= 0; i--)
				check += p[i][0], free(p[i]);
	}
	bench_add(&work, 2 * LIVE * rounds, bytes, check);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, NAME,
		   "Fast path: threads malloc 16 small blocks, touch and free them,\n"
		   "in a tight loop.", 1, &opts);
	rounds = bench_scaled(&opts, 4000000) / (uint64_t)opts.threads;
	if (rounds == 0)
		rounds = 1;   /* every loop once at the smallest scale */
	bench_run_indexed(NAME, &opts, worker, &work);
	return 0;
}
