/* place_handoff: a producer on the first node allocates blocks and queues
 * them to a consumer on the last node, which writes and frees them, then
 * allocates as much privately. A normal allocator keeps the foreign blocks
 * in the consumer's cache and hands them out again: remote pages. This is
 * what origin-aware free has to fix. */
#include "tests/vm/place.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A bounded queue, so the producer cannot run far ahead of the consumer. */
#define QCAP 256
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	void *ptr[QCAP];
	size_t size[QCAP];
	unsigned head, tail;   /* tail - head = items queued */
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static struct place_opts opts;
static int producer_node, consumer_node;
static struct place_count count;

static void push(void *p, size_t size)
{
	pthread_mutex_lock(&q.lock);
	while (q.tail - q.head == QCAP)
		pthread_cond_wait(&q.changed, &q.lock);
	q.ptr[q.tail % QCAP] = p;
	q.size[q.tail++ % QCAP] = size;
	pthread_cond_broadcast(&q.changed);
	pthread_mutex_unlock(&q.lock);
}

static void *pop(size_t *size)
{
	void *p;

	pthread_mutex_lock(&q.lock);
	while (q.tail == q.head)
		pthread_cond_wait(&q.changed, &q.lock);
	p = q.ptr[q.head % QCAP];
	*size = q.size[q.head++ % QCAP];
	pthread_cond_broadcast(&q.changed);
	pthread_mutex_unlock(&q.lock);
	return p;
}

static void *produce(void *arg)
{
	unsigned seed = opts.seed * 7919u + 1;
	size_t done = 0, size;

	(void)arg;
	if (place_current_node() != producer_node)
		place_die("handoff", "producer did not start on its node");
	while (done < opts.bytes) {
		push(place_alloc_one(&seed, &size), size);
		done += size;
	}
	push(NULL, 0);   /* end of stream */
	return NULL;
}

static void *consume(void *arg)
{
	struct place_blocks blocks = {0};
	unsigned seed = opts.seed * 7919u + 101;
	size_t size;
	void *p;

	(void)arg;
	if (place_current_node() != consumer_node)
		place_die("handoff", "consumer did not start on its node");
	while ((p = pop(&size)) != NULL) {
		memset(p, 0x3c, size);   /* the consumer uses the message */
		free(p);
	}
	place_alloc(&blocks, opts.bytes, &seed);
	if (opts.settle_ms)
		place_touch(&blocks, opts.settle_ms);
	place_measure(&blocks, place_target_node(consumer_node), &count);
	place_free(&blocks);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t pa, ca;
	pthread_t pt, ct;
	char where[64];

	place_init(argc, argv, "handoff",
		   "A producer on the first node passes blocks to a consumer on the last,\n"
		   "which frees them and then allocates privately; consumer's local %.",
		   &opts);
	place_two_nodes(&producer_node, &consumer_node);
	place_attr_on_node(&pa, producer_node);
	place_attr_on_node(&ca, consumer_node);
	if (pthread_create(&ct, &ca, consume, NULL) || pthread_create(&pt, &pa, produce, NULL))
		place_die("handoff", "pthread_create failed");
	pthread_join(pt, NULL);
	pthread_join(ct, NULL);
	if (place_target_node(consumer_node) != consumer_node)
		snprintf(where, sizeof(where), "node %d->%d from %d", consumer_node,
			 place_target_node(consumer_node), producer_node);
	else
		snprintf(where, sizeof(where), "node %d from %d", consumer_node, producer_node);
	return place_report("handoff", where, &count, &opts);
}
