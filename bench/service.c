/* service: a long-running mixed workload, shaped like a request-serving
 * daemon (cf. the mixed "server" traces of the allocator literature, e.g.
 * the Redis/memcached-style runs in mimalloc-bench).
 *
 * Worker threads serve requests. A request:
 *  - arrives in a buffer (256 B..16 KiB) and is parsed into 4..16 tokens
 *    (8..128 B each);
 *  - looks up a session (one of 20000 keys at scale 1; see `keys`) in a
 *    shared, sharded table:
 *    creates it (struct + name + data blob of 64 B..4 KiB) when absent,
 *    otherwise updates it (the blob is reallocated one time in four) and,
 *    one time in eight, ends it -- so sessions live across many requests
 *    and are mostly freed by another thread than the one that made them;
 *  - builds a response by appending to a buffer grown with realloc, which
 *    stays in the thread's ring of the last 32 responses (medium lifetime);
 *  - one request in 256 also fills a report buffer of 256 KiB..2 MiB.
 * Short-, medium- and long-lived blocks, cross-thread frees, realloc and
 * the odd large block, all in one process over time.
 */
#include "bench/harness.h"

#include <stdlib.h>
#include <string.h>

#define NAME "service"
#define KEYS 20000
#define SHARDS 64
#define BUCKETS 128   /* per shard */
#define RING 32
#define PAGE 4096

struct session {
	struct session *next;
	uint32_t key, hits;
	char *name;
	char *blob;
	size_t blob_len;
};

static struct shard {
	pthread_mutex_t lock;
	struct session *bucket[BUCKETS];
	char pad[64];
} shards[SHARDS];

static struct bench_opts opts;
static struct bench_work work;
static uint64_t per_thread;
/* KEYS at scale 1, fewer in proportion below it (at least 64): each key
 * then sees about as many requests at any scale, and the mix of session
 * creations, updates and ends stays the same. With 20000 keys at the
 * callgrind input (1/100), most keys were hit once: the run was session
 * creation and the final teardown, which freed 60 % of the blocks freed
 * by another thread. */
static uint32_t keys;

static struct session *new_session(uint32_t key, uint64_t *seed)
{
	struct session *s = bench_xmalloc(NAME, sizeof(*s));
	size_t nl = bench_range(seed, 12, 48);

	s->key = key;
	s->hits = 0;
	s->name = bench_xmalloc(NAME, nl);
	memset(s->name, 'a' + key % 26, nl - 1);
	s->name[nl - 1] = 0;
	s->blob_len = bench_logsize(seed, 64, 4096);
	s->blob = bench_xmalloc(NAME, s->blob_len);
	bench_fill(s->blob, s->blob_len, key);
	return s;
}

static uint64_t free_session(struct session *s)
{
	uint64_t c = bench_peek(s->blob) + (unsigned char)s->name[0];

	free(s->name);
	free(s->blob);
	free(s);
	return c;
}

/* One session operation; returns the bytes the response should echo. */
static size_t session_op(uint64_t *seed, uint64_t *check, uint64_t *ops)
{
	uint32_t key = (uint32_t)(bench_rand(seed) % keys);
	struct shard *sh = &shards[key % SHARDS];
	struct session **pp, *s, *fresh = NULL, *dead = NULL;
	unsigned roll = (unsigned)(bench_rand(seed) & 31);
	size_t echo = 0;
	char *old = NULL, *blob = NULL;
	size_t nlen = 0;

	/* Allocate outside the lock what we may need inside it. */
	if (roll < 8) {
		nlen = bench_logsize(seed, 64, 4096);
		blob = bench_xmalloc(NAME, nlen);
		bench_fill(blob, nlen, key);
	}
	pthread_mutex_lock(&sh->lock);
	for (pp = &sh->bucket[(key / SHARDS) % BUCKETS]; (s = *pp); pp = &s->next)
		if (s->key == key)
			break;
	if (s == NULL) {
		pthread_mutex_unlock(&sh->lock);
		fresh = new_session(key, seed);
		*ops += 3;
		pthread_mutex_lock(&sh->lock);
		/* Another thread may have created it meanwhile: keep theirs. */
		for (pp = &sh->bucket[(key / SHARDS) % BUCKETS]; (s = *pp); pp = &s->next)
			if (s->key == key)
				break;
		if (s == NULL) {
			fresh->next = sh->bucket[(key / SHARDS) % BUCKETS];
			sh->bucket[(key / SHARDS) % BUCKETS] = fresh;
			echo = fresh->blob_len;
			fresh = NULL;
		}
	}
	if (s) {
		s->hits++;
		echo = s->blob_len;
		*check += bench_peek(s->blob);
		if (roll < 8) {   /* update: swap in the new blob */
			old = s->blob;
			s->blob = blob;
			s->blob_len = nlen;
			blob = NULL;
		} else if (roll >= 28) {   /* end the session */
			*pp = s->next;
			dead = s;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	if (fresh)
		*check += free_session(fresh), *ops += 3;
	if (dead)
		*check += free_session(dead), *ops += 3;
	if (old)
		free(old), (*ops)++;
	if (blob)
		free(blob), (*ops)++;
	return echo > 512 ? 512 : echo;
}

static void *worker(void *arg)
{
	int id = *(int *)arg;
	uint64_t seed = bench_seed(&opts, (uint64_t)id), ops = 0, bytes = 0, check = 0;
	char *ring[RING] = {0};
	char *tok[16];

	for (uint64_t r = 0; r < per_thread; r++) {
		size_t rl = bench_logsize(&seed, 256, 16384), len = 0, cap = 128;
		char *req = bench_xmalloc(NAME, rl), *resp;
		int nt = (int)bench_range(&seed, 4, 16);

		bench_fill(req, rl, r);
		for (int i = 0; i < nt; i++) {
			size_t tl = bench_logsize(&seed, 8, 128);

			tok[i] = bench_xmalloc(NAME, tl);
			memcpy(tok[i], req + (i * 61) % (rl - tl + 1), tl);
			bytes += tl;
		}
		resp = bench_xmalloc(NAME, cap);
		for (int i = 0; i < nt; i++) {
			size_t add = 32 + session_op(&seed, &check, &ops);

			if (len + add > cap) {
				while (len + add > cap)
					cap *= 2;
				resp = realloc(resp, cap);
				if (resp == NULL)
					bench_die(NAME, "realloc failed");
				ops++;
			}
			memset(resp + len, tok[i][0], add);
			len += add;
		}
		if ((r & 255) == 255) {   /* a report: large, short-lived */
			size_t big = bench_logsize(&seed, 256 << 10, 2 << 20);
			char *p = bench_xmalloc(NAME, big);

			for (size_t off = 0; off < big; off += PAGE)
				p[off] = (char)off;
			check += (unsigned char)p[big / 2 & ~(size_t)(PAGE - 1)];
			free(p);
			ops += 2;
			bytes += big;
		}
		for (int i = 0; i < nt; i++)
			free(tok[i]);
		free(req);
		if (ring[r % RING])
			check += bench_peek(ring[r % RING]), free(ring[r % RING]), ops++;
		ring[r % RING] = resp;
		ops += 2 * (uint64_t)nt + 3;
		bytes += rl + cap;
	}
	for (int i = 0; i < RING; i++)
		free(ring[i]);
	bench_add(&work, ops, bytes, check);
	return NULL;
}

int main(int argc, char **argv)
{
	int ids[256];
	double t0;
	uint64_t check = 0;

	bench_init(argc, argv, NAME,
		   "Long-running mixed service: requests with short-lived buffers,\n"
		   "shared sessions freed by other threads, realloc'd responses kept\n"
		   "a while, and occasional large reports.", 4, &opts);
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_init(&shards[i].lock, NULL);
	per_thread = bench_scaled(&opts, 200000) / (uint64_t)opts.threads;
	if (per_thread == 0)
		per_thread = 1;   /* every loop once at the smallest scale */
	keys = (uint32_t)bench_scaled(&opts, KEYS);
	if (keys > KEYS)
		keys = KEYS;
	if (keys < 64)
		keys = 64;
	for (int i = 0; i < opts.threads; i++)
		ids[i] = i;
	t0 = bench_now();
	bench_threads(opts.threads, worker, ids, sizeof(ids[0]));
	for (int i = 0; i < SHARDS; i++)
		for (int b = 0; b < BUCKETS; b++)
			while (shards[i].bucket[b]) {
				struct session *s = shards[i].bucket[b];

				shards[i].bucket[b] = s->next;
				check += free_session(s);
			}
	bench_add(&work, 0, 0, check);
	bench_report(NAME, &opts, &work, "ops", bench_now() - t0);
	return 0;
}
