/* larson: server-style churn across threads, after Larson & Krishnan
 * ("Memory allocation for long-running server applications", ISMM 1998).
 *
 * T lineages each own an array of live blocks (8..1000 bytes, uniform).
 * A lineage runs as a sequence of short-lived threads ("generations"):
 * each replaces random slots (free the old block, malloc a new one, write
 * it) for a while, exits, and the next thread inherits the array -- so
 * most frees are of blocks another, now dead, thread allocated, as in a
 * server whose worker threads come and go. The arrays start filled by the
 * main thread.
 */
#include "bench/harness.h"

#include <stdlib.h>

#define NAME "larson"
#define SLOTS 1000
#define MIN_SIZE 8
#define MAX_SIZE 1000
#define PER_GENERATION 10000

struct lineage {
	void *slot[SLOTS];
	size_t size[SLOTS];
	uint64_t seed, replacements, gens;
	uint64_t bytes, check;
};

static struct bench_work work;

static void *generation(void *arg)
{
	struct lineage *l = arg;
	uint64_t n = l->replacements < PER_GENERATION ? l->replacements : PER_GENERATION;

	for (uint64_t i = 0; i < n; i++) {
		size_t k = (size_t)(bench_rand(&l->seed) % SLOTS);
		size_t sz = bench_range(&l->seed, MIN_SIZE, MAX_SIZE);

		l->check += bench_peek(l->slot[k]);
		free(l->slot[k]);
		l->slot[k] = bench_xmalloc(NAME, sz);
		l->size[k] = sz;
		bench_fill(l->slot[k], sz, i);
		l->bytes += sz;
	}
	l->replacements -= n;
	l->gens++;
	return NULL;
}

static void *run_lineage(void *arg)
{
	struct lineage *l = arg;

	while (l->replacements > 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, generation, l))
			bench_die(NAME, "pthread_create failed");
		pthread_join(t, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct lineage *ls;
	uint64_t total, gens = 0;
	double t0;

	bench_init(argc, argv, NAME,
		   "Server churn: short-lived threads replace random blocks of an array\n"
		   "inherited from the previous thread (frees of dead threads' blocks).",
		   4, &o);
	total = bench_scaled(&o, 16000000);
	if (total < (uint64_t)o.threads)
		total = (uint64_t)o.threads;   /* every lineage runs a generation */
	ls = bench_xmalloc(NAME, sizeof(*ls) * (size_t)o.threads);
	for (int i = 0; i < o.threads; i++) {
		ls[i] = (struct lineage){.seed = bench_seed(&o, (uint64_t)i),
					 .replacements = total / (uint64_t)o.threads};
		for (int k = 0; k < SLOTS; k++) {
			ls[i].size[k] = bench_range(&ls[i].seed, MIN_SIZE, MAX_SIZE);
			ls[i].slot[k] = bench_xmalloc(NAME, ls[i].size[k]);
			bench_fill(ls[i].slot[k], ls[i].size[k], (uint64_t)k);
		}
	}
	t0 = bench_now();
	bench_threads(o.threads, run_lineage, ls, sizeof(*ls));
	for (int i = 0; i < o.threads; i++) {
		for (int k = 0; k < SLOTS; k++) {
			ls[i].check += bench_peek(ls[i].slot[k]);
			free(ls[i].slot[k]);
		}
		bench_add(&work, 2 * (total / (uint64_t)o.threads), ls[i].bytes, ls[i].check);
		gens += ls[i].gens;
	}
	bench_report(NAME, &o, &work, "ops", bench_now() - t0);
	free(ls);
	return gens ? 0 : 1;
}
