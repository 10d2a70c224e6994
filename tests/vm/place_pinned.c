/* place_pinned: one thread per node, started pinned to that node's CPUs,
 * each allocating privately. Every page should be on the thread's node:
 * the easy case, which plain jemalloc already gets mostly right. */
#include "tests/vm/place.h"

#include <stdio.h>

struct worker {
	int node;
	unsigned seed;
	pthread_t thread;
	struct place_blocks blocks;
	struct place_count count;
};

static struct place_opts opts;
static pthread_barrier_t all_allocated, all_measured;

static void *work(void *arg)
{
	struct worker *w = arg;

	if (place_current_node() != w->node)
		place_die("pinned", "thread did not start on its node");
	place_alloc(&w->blocks, opts.bytes, &w->seed);
	/* Measure only when every thread has allocated: the figure is about
	 * concurrent allocation on all nodes, not one node at a time. */
	pthread_barrier_wait(&all_allocated);
	if (opts.settle_ms)
		place_touch(&w->blocks, opts.settle_ms);
	place_measure(&w->blocks, place_target_node(w->node), &w->count);
	pthread_barrier_wait(&all_measured);
	place_free(&w->blocks);
	return NULL;
}

int main(int argc, char **argv)
{
	static struct worker workers[PLACE_MAX_NODES * 64];
	int nodes[PLACE_MAX_NODES], nn, nw = 0;
	struct place_count sum = {0};
	char where[64];

	place_init(argc, argv, "pinned",
		   "One thread per node (pinned) allocates privately; local % of its pages.",
		   &opts);
	nn = place_cpu_nodes(nodes);
	if (nn < 1)
		place_skip("pinned", "no node with usable CPUs and memory");
	for (int i = 0; i < nn; i++)
		for (int t = 0; t < opts.threads; t++, nw++)
			workers[nw] = (struct worker){.node = nodes[i],
				.seed = opts.seed * 7919u + (unsigned)nw + 1};
	pthread_barrier_init(&all_allocated, NULL, (unsigned)nw);
	pthread_barrier_init(&all_measured, NULL, (unsigned)nw);
	for (int i = 0; i < nw; i++) {
		pthread_attr_t attr;

		place_attr_on_node(&attr, workers[i].node);
		if (pthread_create(&workers[i].thread, &attr, work, &workers[i]))
			place_die("pinned", "pthread_create failed");
		pthread_attr_destroy(&attr);
	}
	for (int i = 0; i < nw; i++) {
		pthread_join(workers[i].thread, NULL);
		place_count_add(&sum, &workers[i].count);
		if (opts.verbose)
			printf("  node %d -> %d: %zu of %zu pages local\n", workers[i].node,
			       place_target_node(workers[i].node), workers[i].count.local,
			       workers[i].count.pages);
	}
	snprintf(where, sizeof(where), "%d nodes", nn);
	return place_report("pinned", where, &sum, &opts);
}
