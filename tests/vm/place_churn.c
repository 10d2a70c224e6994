/* place_churn: threads on node A allocate, free all but a few long-lived
 * blocks (1 in 32, as caches and sessions outlive requests) and exit; then
 * as many new threads on node B allocate the same amount. The remnants keep
 * the heap from being trimmed, so a normal allocator hands B the memory A
 * touched (glibc gives the new thread the dead thread's arena, jemalloc the
 * least-loaded arena with its half-empty slabs): B's pages are remote. */
#include "tests/vm/place.h"

#include <stdio.h>
#include <stdlib.h>

#define REMNANT_EVERY 32

struct worker {
	int node;
	bool measure;   /* phase 2: hold the blocks until measured */
	unsigned seed;
	pthread_t thread;
	struct place_blocks blocks;
	struct place_count count;
};

static struct place_opts opts;
static pthread_barrier_t all_allocated;

static void *work(void *arg)
{
	struct worker *w = arg;

	if (place_current_node() != w->node)
		place_die("churn", "thread did not start on its node");
	place_alloc(&w->blocks, opts.bytes, &w->seed);
	if (w->measure) {
		pthread_barrier_wait(&all_allocated);
		if (opts.settle_ms)
			place_touch(&w->blocks, opts.settle_ms);
		place_measure(&w->blocks, place_target_node(w->node), &w->count);
		place_free(&w->blocks);
		return NULL;
	}
	/* Free in allocation order, keeping the remnants (freed by main at
	 * the very end, after the measurement). */
	size_t kept = 0;
	for (size_t i = 0; i < w->blocks.n; i++)
		if (i % REMNANT_EVERY == 0)
			w->blocks.ptr[kept++] = w->blocks.ptr[i];
		else
			free(w->blocks.ptr[i]);
	w->blocks.n = kept;
	return NULL;
}

/* Runs opts.threads workers on `node` to completion; sums their counts.
 * Phase 1's workers (and their remnants) live on in `w` until main ends. */
static void phase(struct worker *w, int node, bool measure, unsigned seed,
		  struct place_count *sum)
{
	pthread_barrier_init(&all_allocated, NULL, (unsigned)opts.threads);
	for (int i = 0; i < opts.threads; i++) {
		pthread_attr_t attr;

		w[i] = (struct worker){.node = node, .measure = measure,
				       .seed = seed + (unsigned)i};
		place_attr_on_node(&attr, node);
		if (pthread_create(&w[i].thread, &attr, work, &w[i]))
			place_die("churn", "pthread_create failed");
		pthread_attr_destroy(&attr);
	}
	for (int i = 0; i < opts.threads; i++) {
		pthread_join(w[i].thread, NULL);
		if (sum)
			place_count_add(sum, &w[i].count);
	}
	pthread_barrier_destroy(&all_allocated);
}

int main(int argc, char **argv)
{
	static struct worker first[64], second[64];
	int a, b;
	struct place_count sum = {0};
	char where[64];

	place_init(argc, argv, "churn",
		   "Threads on node A allocate, free all but 1 block in 32 and exit;\n"
		   "new threads on node B allocate as much; local % of B's pages.", &opts);
	place_two_nodes(&a, &b);
	phase(first, a, false, opts.seed * 7919u + 1, NULL);
	phase(second, b, true, opts.seed * 7919u + 101, &sum);
	for (int i = 0; i < opts.threads; i++)
		place_free(&first[i].blocks);
	if (place_target_node(b) != b)
		snprintf(where, sizeof(where), "node %d->%d after %d", b, place_target_node(b), a);
	else
		snprintf(where, sizeof(where), "node %d after %d", b, a);
	return place_report("churn", where, &sum, &opts);
}
