/* place_migrate: a thread allocates on the first node, is moved
 * (sched_setaffinity) to the last node, frees everything and allocates
 * again. Its thread cache and arena still hold the first node's memory;
 * numashim must notice the move and allocate from the new node. */
#include "tests/vm/place.h"

#include <stdio.h>

static struct place_opts opts;
static int from, to;
static struct place_count count;

static void *work(void *arg)
{
	struct place_blocks blocks = {0};
	unsigned seed = opts.seed * 7919u + 1;

	(void)arg;
	if (place_current_node() != from)
		place_die("migrate", "thread did not start on its node");
	place_alloc(&blocks, opts.bytes, &seed);
	place_move_to_node(to);
	place_free(&blocks);
	place_alloc(&blocks, opts.bytes, &seed);
	if (opts.settle_ms)
		place_touch(&blocks, opts.settle_ms);
	place_measure(&blocks, place_target_node(to), &count);
	place_free(&blocks);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	pthread_t t;
	char where[64];

	place_init(argc, argv, "migrate",
		   "A thread allocates on the first node, moves to the last, frees all\n"
		   "and allocates again; local % of the new allocations.", &opts);
	place_two_nodes(&from, &to);
	place_attr_on_node(&attr, from);
	if (pthread_create(&t, &attr, work, NULL))
		place_die("migrate", "pthread_create failed");
	pthread_join(t, NULL);
	if (place_target_node(to) != to)
		snprintf(where, sizeof(where), "node %d->%d->%d", from, to, place_target_node(to));
	else
		snprintf(where, sizeof(where), "node %d->%d", from, to);
	return place_report("migrate", where, &count, &opts);
}
