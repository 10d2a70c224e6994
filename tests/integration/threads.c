/* Many threads allocating, reallocating and freeing, with blocks handed
 * between threads through a shared slot table: a block is often freed or
 * realloc'd by a thread other than the one that allocated it.  Every block
 * carries its size and a seed in its first bytes and a pattern after them,
 * checked by whoever touches it next.
 *
 *   threads [NTHREADS [OPS_PER_THREAD]]   (default 8 x 100000) */
#include "tests/integration/check.h"

#include <malloc.h>
#include <pthread.h>

#define NSLOTS 1024
#define LOCAL 64

struct hdr {
	size_t size;     /* total block size including this header */
	uintptr_t seed;
};

static void *slots[NSLOTS];
static unsigned long ops_per_thread = 100000;

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t pick_size(uint64_t *r)
{
	uint64_t x = rng_next(r);
	switch (x % 1000) {
	case 0 ... 1:
		return sizeof(struct hdr) + (x >> 8) % (2u << 20);      /* large */
	case 2 ... 80:
		return sizeof(struct hdr) + (x >> 8) % 32768;           /* medium */
	default:
		return sizeof(struct hdr) + (x >> 8) % 512;             /* small */
	}
}

static void stamp(void *p, size_t size, uintptr_t seed)
{
	struct hdr *h = p;
	h->size = size;
	h->seed = seed;
	pat_fill(h + 1, size - sizeof *h, seed);
}

/* Returns true if the block is intact; prints what broke otherwise. */
static bool verify(const char *who, int tid, const void *p)
{
	const struct hdr *h = p;
	size_t n = h->size - sizeof *h;
	size_t bad = pat_find_bad(h + 1, n, h->seed);
	size_t usable = malloc_usable_size((void *)p);

	if (bad != (size_t)-1) {
		check_fail(__FILE__, __LINE__, "thread %d, %s: block %p of %zu bytes (seed %#lx): "
			   "expected the pattern intact, got a wrong byte at offset %zu", tid, who,
			   p, h->size, (unsigned long)h->seed, bad + sizeof *h);
		return false;
	}
	if (usable < h->size) {
		check_fail(__FILE__, __LINE__, "thread %d, %s: malloc_usable_size(%p): expected "
			   ">= %zu, got %zu", tid, who, p, h->size, usable);
		return false;
	}
	return true;
}

static void *new_block(uint64_t *r, int tid, size_t size, uintptr_t seed)
{
	void *p = NULL;
	size_t align = (size_t)16 << (rng_next(r) % 8);
	switch (rng_next(r) % 4) {
	case 0:
		p = malloc(size);
		break;
	case 1:
		p = calloc(1, size);
		if (p) {
			const unsigned char *c = p;
			for (size_t i = 0; i < size; i++)
				if (c[i]) {
					check_fail(__FILE__, __LINE__, "thread %d: calloc(1, %zu): expected "
						   "zeroes, got 0x%02x at offset %zu", tid, size, c[i], i);
					break;
				}
		}
		break;
	case 2:
		p = aligned_alloc(align, size);
		CHECK(p == NULL || ((uintptr_t)p & (align - 1)) == 0, "thread %d: aligned_alloc(%zu, "
		      "%zu): expected alignment, got %p", tid, align, size, p);
		break;
	default: {
		int rc = posix_memalign(&p, align, size);
		CHECK(rc == 0, "thread %d: posix_memalign(&p, %zu, %zu): expected 0, got %d", tid,
		      align, size, rc);
		break;
	}
	}
	CHECK(p != NULL, "thread %d: allocating %zu bytes: expected a block, got NULL", tid, size);
	if (p)
		stamp(p, size, seed);
	return p;
}

/* Someone else's block (or our own): check it, then free it or realloc it
 * and pass it on. */
static void *take_foreign(uint64_t *r, int tid, void *p)
{
	if (!verify("taking a block from the slot table", tid, p))
		return NULL; /* leak it: it is corrupt */
	if (rng_next(r) & 1) {
		free(p);
		return NULL;
	}
	struct hdr *h = p;
	size_t old = h->size, size = pick_size(r), keep = old < size ? old : size;
	uintptr_t seed = h->seed;
	void *q = realloc(p, size);
	CHECK(q != NULL, "thread %d: realloc(foreign %p, %zu): expected a block, got NULL", tid, p, size);
	if (q == NULL)
		return p;
	size_t bad = pat_find_bad((struct hdr *)q + 1, keep - sizeof *h, seed);
	CHECK(bad == (size_t)-1, "thread %d: realloc(foreign block, %zu -> %zu): expected contents "
	      "kept, got a difference at offset %zu", tid, old, size, bad + sizeof *h);
	stamp(q, size, rng_next(r));
	return q;
}

static void *worker(void *arg)
{
	int tid = (int)(intptr_t)arg;
	uint64_t r = 0x9E3779B97F4A7C15ull * (uint64_t)(tid + 1);
	void *local[LOCAL] = { 0 };

	for (unsigned long op = 0; op < ops_per_thread; op++) {
		uint64_t x = rng_next(&r);
		if (x % 3 == 0) {
			/* hand a new block to the table, take whatever was there */
			size_t size = pick_size(&r);
			void *p = new_block(&r, tid, size, rng_next(&r));
			if (p == NULL)
				continue;
			void *old = __atomic_exchange_n(&slots[(x >> 8) % NSLOTS], p, __ATOMIC_ACQ_REL);
			if (old) {
				old = take_foreign(&r, tid, old);
				if (old)
					old = __atomic_exchange_n(&slots[(x >> 20) % NSLOTS], old,
								  __ATOMIC_ACQ_REL);
				if (old && verify("freeing a displaced block", tid, old))
					free(old);
			}
		} else {
			/* private churn: allocate, grow/shrink, free */
			size_t i = (x >> 8) % LOCAL;
			if (local[i] == NULL) {
				local[i] = new_block(&r, tid, pick_size(&r), x);
			} else if (!verify("checking a private block", tid, local[i])) {
				local[i] = NULL;
			} else if (x & 0x10000) {
				free(local[i]);
				local[i] = NULL;
			} else {
				local[i] = take_foreign(&r, tid, local[i]);
			}
		}
	}
	for (size_t i = 0; i < LOCAL; i++)
		if (local[i] && verify("final private check", tid, local[i]))
			free(local[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;
	if (argc > 2)
		ops_per_thread = strtoul(argv[2], NULL, 0);
	pthread_t th[256];

	if (n < 1 || n > 256) {
		fprintf(stderr, "usage: %s [NTHREADS(1-256) [OPS]]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	deadlock_guard(240);
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
		CHECK(rc == 0, "pthread_create(thread %d): expected 0, got %d", i, rc);
		if (rc)
			n = i;
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	size_t left = 0;
	for (size_t i = 0; i < NSLOTS; i++)
		if (slots[i]) {
			left++;
			if (verify("draining the slot table in main", -1, slots[i]))
				free(slots[i]);
		}
	printf("%d threads x %lu ops done, %zu blocks drained by main\n", n, ops_per_thread, left);
	CHECK_EXIT();
}
