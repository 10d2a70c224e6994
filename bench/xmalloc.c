/* xmalloc: producer/consumer frees, after Lever & Boreham's xmalloc-test
 * ("malloc() performance in a multithreaded Linux environment", 2000).
 *
 * Half the threads produce: they malloc blocks (16..1024 bytes,
 * log-uniform), write them and queue them in batches of 128. The other half
 * consume: they read each block and free it. Every free is of a block
 * another thread allocated -- the case per-thread caches handle worst and
 * the one numashim's origin-aware free reroutes when the threads sit on
 * different nodes.
 */
#include "bench/harness.h"

#include <stdlib.h>

#define NAME "xmalloc"
#define BATCH 128
#define QCAP 64

struct batch {
	void *p[BATCH];
	size_t size[BATCH];
	int n;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct batch *b[QCAP];
	unsigned head, tail;
	int producers_left;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static struct bench_opts opts;
static struct bench_work work;
static int producers;
static uint64_t per_producer;

static void push(struct batch *b)
{
	pthread_mutex_lock(&q.lock);
	while (q.tail - q.head == QCAP)
		pthread_cond_wait(&q.changed, &q.lock);
	q.b[q.tail++ % QCAP] = b;
	pthread_cond_broadcast(&q.changed);
	pthread_mutex_unlock(&q.lock);
}

/* NULL when every producer is done and the queue is empty. */
static struct batch *pop(void)
{
	struct batch *b = NULL;

	pthread_mutex_lock(&q.lock);
	while (q.tail == q.head && q.producers_left > 0)
		pthread_cond_wait(&q.changed, &q.lock);
	if (q.tail != q.head) {
		b = q.b[q.head++ % QCAP];
		pthread_cond_broadcast(&q.changed);
	}
	pthread_mutex_unlock(&q.lock);
	return b;
}

static void *role(void *arg)
{
	int id = *(int *)arg;
	uint64_t seed = bench_seed(&opts, (uint64_t)id), ops = 0, bytes = 0, check = 0;

	if (id < producers) {
		for (uint64_t done = 0; done < per_producer;) {
			struct batch *b = bench_xmalloc(NAME, sizeof(*b));

			for (b->n = 0; b->n < BATCH && done < per_producer; b->n++, done++) {
				size_t sz = bench_logsize(&seed, 16, 1024);

				b->p[b->n] = bench_xmalloc(NAME, sz);
				b->size[b->n] = sz;
				bench_fill(b->p[b->n], sz, done);
				bytes += sz;
			}
			ops += (uint64_t)b->n + 1;
			push(b);
		}
		pthread_mutex_lock(&q.lock);
		q.producers_left--;
		pthread_cond_broadcast(&q.changed);
		pthread_mutex_unlock(&q.lock);
	} else {
		struct batch *b;

		while ((b = pop()) != NULL) {
			for (int i = 0; i < b->n; i++) {
				check += bench_peek(b->p[i]);
				free(b->p[i]);
			}
			ops += (uint64_t)b->n + 1;
			free(b);
		}
	}
	bench_add(&work, ops, bytes, check);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, NAME,
		   "Producer/consumer: half the threads malloc and queue blocks, the\n"
		   "other half free them (every free is cross-thread).", 4, &opts);
	producers = opts.threads / 2 > 0 ? opts.threads / 2 : 1;
	if (opts.threads < 2)
		opts.threads = 2;   /* a consumer is needed */
	q.producers_left = producers;
	per_producer = bench_scaled(&opts, 3000000) / (uint64_t)producers;
	if (per_producer == 0)
		per_producer = 1;   /* every loop once at the smallest scale */
	bench_run_indexed(NAME, &opts, role, &work);
	return 0;
}
