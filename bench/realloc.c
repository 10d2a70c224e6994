/* realloc: realloc-heavy growth, as in string builders, vectors and
 * read-a-file-into-a-growing-buffer loops (cf. the realloc stress in
 * glibc's and mimalloc's test suites).
 *
 * Each thread keeps 64 growing buffers. A step picks one and appends 1..4096
 * bytes (log-uniform) through realloc, writing the new bytes; now and then a
 * buffer is trimmed to half its length. A buffer that outgrows its target
 * (4 KiB..1 MiB, drawn when it was started) is freed and started again.
 */
#include "bench/harness.h"

#include <stdlib.h>
#include <string.h>

#define NAME "realloc"
#define BUFS 64

struct buf {
	char *p;
	size_t len, target;
};

static struct bench_opts opts;
static struct bench_work work;
static uint64_t steps;

static void *worker(void *arg)
{
	int id = *(int *)arg;
	uint64_t seed = bench_seed(&opts, (uint64_t)id), ops = 0, bytes = 0, check = 0;
	struct buf b[BUFS] = {{0}};

	for (int i = 0; i < BUFS; i++)
		b[i].target = bench_logsize(&seed, 4096, 1 << 20);
	for (uint64_t s = 0; s < steps; s++) {
		struct buf *x = &b[bench_rand(&seed) % BUFS];
		size_t add = bench_logsize(&seed, 1, 4096);
		char *q;

		if (x->len + add > x->target) {
			if (x->p)
				check += (unsigned char)x->p[x->len / 2];
			free(x->p);
			*x = (struct buf){.target = bench_logsize(&seed, 4096, 1 << 20)};
			ops++;
			continue;
		}
		if ((bench_rand(&seed) & 15) == 0 && x->len > 64) {
			x->len /= 2;   /* trim, as a parser dropping a consumed prefix */
			q = realloc(x->p, x->len);
			if (q == NULL)
				bench_die(NAME, "realloc failed");
			x->p = q;
			ops++;
		}
		q = realloc(x->p, x->len + add);
		if (q == NULL)
			bench_die(NAME, "realloc failed");
		x->p = q;
		memset(x->p + x->len, (int)(s & 0xff), add);
		x->len += add;
		bytes += add;
		ops++;
	}
	for (int i = 0; i < BUFS; i++)
		free(b[i].p);
	bench_add(&work, ops + BUFS, bytes, check);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, NAME,
		   "realloc-heavy: threads grow 64 buffers each by small appends, trim\n"
		   "some, and restart those that reach their target size.", 2, &opts);
	steps = bench_scaled(&opts, 3000000) / (uint64_t)opts.threads;
	if (steps == 0)
		steps = 1;   /* every loop once at the smallest scale */
	bench_run_indexed(NAME, &opts, worker, &work);
	return 0;
}
