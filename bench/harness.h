/* harness: what every bench/ workload shares.
 *
 * A workload is one program: `bench/NAME [-t THREADS] [-s SCALE] [--seed N]
 * [--pin]`.
 * It does a fixed amount of work (SCALE multiplies its iteration counts, so
 * the same arguments mean the same work under every allocator) and prints
 * one line such as
 *   larson: threads 4 scale 1: 4000000 ops 529.3 MiB in 0.412 s = 9.71 Mops/s; check 1f2e; malloc libjemalloc.so.2
 * The runner (bench/run) times the whole process from outside; the figures
 * printed here show the work was done and let a person sanity-check a run.
 * "malloc" names the allocator library mapped into the process (or glibc),
 * so a preload that silently failed is noticed.
 *
 * Nothing here allocates on the timed path except the workload itself.
 */
#ifndef NUMASHIM_BENCH_HARNESS_H
#define NUMASHIM_BENCH_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_opts {
	int threads;     /* -t: worker threads (or launchers, for startup) */
	double scale;    /* -s: multiplies every iteration count */
	uint64_t seed;   /* --seed */
	bool child;      /* --child: the startup workload's tiny program */
};

/* Per-run totals the workload fills in (atomically when threads add). */
struct bench_work {
	uint64_t ops;     /* allocator calls, or requests/processes: see `unit` */
	uint64_t bytes;   /* bytes requested */
	uint64_t check;   /* folded from the data read back: proves the writes */
};

/* Parses the options; `def_threads` is the workload's default. Prints the
 * usage (with `about`) and exits on bad input. */
void bench_init(int argc, char **argv, const char *name, const char *about,
		int def_threads, struct bench_opts *o);

/* Scales an iteration count by -s, at least 1. */
uint64_t bench_scaled(const struct bench_opts *o, uint64_t n);

/* Runs fn on `n` threads, thread i getting (char *)args + i * arg_size
 * (NULL with args NULL), started together behind a barrier; returns when
 * all have finished. */
void bench_threads(int n, void *(*fn)(void *), void *args, size_t arg_size);

double bench_now(void);   /* CLOCK_MONOTONIC, seconds */

/* The usual run: o->threads workers, worker i given a pointer to int i,
 * timed together, then "ops" of w reported under `name`. */
void bench_run_indexed(const char *name, const struct bench_opts *o,
		       void *(*fn)(void *), struct bench_work *w);

/* xorshift64*: per thread, deterministic per seed. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [lo, hi]. */
static inline size_t bench_range(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)(bench_rand(s) % (hi - lo + 1));
}

/* Log-uniform in [lo, hi]: every power-of-two band equally likely, as in
 * heaps of real programs where small blocks dominate by count. */
size_t bench_logsize(uint64_t *s, size_t lo, size_t hi);

/* Seed for thread/stream `i` of a run. Never 0 (xorshift fixed point). */
uint64_t bench_seed(const struct bench_opts *o, uint64_t i);

/* Writes `n` bytes of p (first, last and one per 64 bytes between: every
 * cache line, without turning the workload into a memset benchmark). */
void bench_fill(void *p, size_t n, uint64_t v);
/* Reads back what bench_fill wrote at the first byte. */
static inline uint64_t bench_peek(const void *p)
{
	return *(const volatile unsigned char *)p;
}

void bench_add(struct bench_work *w, uint64_t ops, uint64_t bytes, uint64_t check);

/* Prints the result line (unit: "ops", "requests", "processes"...). */
void bench_report(const char *name, const struct bench_opts *o,
		  const struct bench_work *w, const char *unit, double secs);

void bench_die(const char *name, const char *what) __attribute__((noreturn));

/* malloc that dies loudly on NULL: a benchmark must not measure failure. */
void *bench_xmalloc(const char *name, size_t n);

#endif
