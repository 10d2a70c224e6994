/* cache-scratch: passive false sharing, after Hoard's cache-scratch
 * (Berger et al., ASPLOS 2000).
 *
 * The main thread allocates one small block per worker, back to back (so
 * several share a cache line), and hands one to each worker. A worker frees
 * it, then repeatedly allocates a block of the same size, writes it many
 * times and frees it. An allocator that hands the worker back the block it
 * just freed -- which sits in a cache line shared with another worker's --
 * makes the cores fight over that line for the whole run.
 */
#include "bench/harness.h"

#include <stdlib.h>

#define NAME "cache-scratch"
#define OBJ 8
#define WRITES 100

struct job {
	char *first;
	int id;
};

static struct bench_opts opts;
static struct bench_work work;
static uint64_t iters;

static void *worker(void *arg)
{
	struct job *j = arg;
	uint64_t check = 0;

	free(j->first);
	for (uint64_t i = 0; i < iters; i++) {
		volatile char *p = bench_xmalloc(NAME, OBJ);

		/* The first pass stores, the others read back and add: a
		 * fresh block's old contents (whatever the allocator left
		 * there) must not reach the checksum. */
		for (int b = 0; b < OBJ; b++)
			p[b] = (char)b;
		for (int w = 1; w < WRITES; w++)
			for (int b = 0; b < OBJ; b++)
				p[b] = (char)(p[b] + w + b);
		check += (unsigned char)p[0];
		free((void *)p);
	}
	bench_add(&work, 2 * iters + 1, iters * OBJ, check);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job jobs[256];
	double t0;

	bench_init(argc, argv, NAME,
		   "Passive false sharing: workers free a block the main thread\n"
		   "allocated next to the others', then churn and write same-size blocks.",
		   2, &opts);
	iters = bench_scaled(&opts, 1000000) / (uint64_t)opts.threads;
	if (iters == 0)
		iters = 1;   /* every loop once at the smallest scale */
	for (int i = 0; i < opts.threads; i++) {
		jobs[i].first = bench_xmalloc(NAME, OBJ);
		jobs[i].first[0] = (char)i;
		jobs[i].id = i;
	}
	t0 = bench_now();
	bench_threads(opts.threads, worker, jobs, sizeof(jobs[0]));
	bench_report(NAME, &opts, &work, "ops", bench_now() - t0);
	return 0;
}
