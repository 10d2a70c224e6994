/* harness: option parsing, threads, sizes and the result line (harness.h). */
#include "bench/harness.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *bench_name = "bench";

/* --pin: the CPUs this process may run on, in order; 0 = not pinning. */
static int pin_cpus[CPU_SETSIZE];
static int pin_n;

void bench_die(const char *name, const char *what)
{
	fprintf(stderr, "%s: %s\n", name ? name : bench_name, what);
	exit(2);
}

void *bench_xmalloc(const char *name, size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		bench_die(name, "out of memory");
	return p;
}

static void usage(const char *name, const char *about, int def_threads, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-t THREADS] [-s SCALE] [--seed N] [--pin]\n%s\n"
		"  -t, --threads N  worker threads (default %d)\n"
		"  -s, --scale X    multiply the iteration counts by X (default 1)\n"
		"  --seed N         random seed (default 1)\n"
		"  --pin            pin the main thread to the first CPU it may run on\n"
		"                   and worker i to the (i mod n)-th of those n CPUs\n"
		"                   (threads a worker starts inherit its CPU)\n",
		name, about, def_threads);
	exit(status);
}

static double parse_num(const char *name, const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0)) {
		fprintf(stderr, "%s: %s '%s': not a positive number\n", name, opt, s);
		exit(2);
	}
	return v;
}

/* Where the threads run, fixed: under valgrind, which runs one thread at a
 * time, the process otherwise wanders between CPUs as a whole, and so do
 * all its threads' (emulated) NUMA nodes -- the instruction count of a
 * NUMA-aware allocator then depends on the host's scheduler. Pinned, the
 * threads sit on their CPUs as on a real multi-node machine. */
static void pin_to(const char *name, pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(t, sizeof(set), &set))
		bench_die(name, "--pin: pthread_setaffinity_np failed");
}

static void pin_attr(pthread_attr_t *attr, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_attr_setaffinity_np(attr, sizeof(set), &set))
		bench_die(NULL, "--pin: pthread_attr_setaffinity_np failed");
}

static void pin_init(const char *name)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		bench_die(name, "--pin: sched_getaffinity failed");
	pin_n = 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			pin_cpus[pin_n++] = c;
	if (pin_n == 0)
		bench_die(name, "--pin: no CPU in the affinity mask");
	pin_to(name, pthread_self(), pin_cpus[0]);
}

void bench_init(int argc, char **argv, const char *name, const char *about,
		int def_threads, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{"threads", required_argument, NULL, 't'},
		{"scale", required_argument, NULL, 's'},
		{"seed", required_argument, NULL, 'S'},
		{"child", no_argument, NULL, 'c'},
		{"pin", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	bench_name = name;
	*o = (struct bench_opts){.threads = def_threads, .scale = 1, .seed = 1};
	while ((c = getopt_long(argc, argv, "t:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o->threads = (int)parse_num(name, "--threads", optarg); break;
		case 's': o->scale = parse_num(name, "--scale", optarg); break;
		case 'S': o->seed = (uint64_t)parse_num(name, "--seed", optarg); break;
		case 'c': o->child = true; break;
		case 'p': if (pin_n == 0) pin_init(name); break;
		case 'h': usage(name, about, def_threads, 0); break;
		default: usage(name, about, def_threads, 2);
		}
	}
	if (optind < argc || o->threads < 1 || o->threads > 256)
		usage(name, about, def_threads, 2);
}

uint64_t bench_scaled(const struct bench_opts *o, uint64_t n)
{
	double v = (double)n * o->scale;

	return v < 1 ? 1 : (uint64_t)v;
}

uint64_t bench_seed(const struct bench_opts *o, uint64_t i)
{
	/* splitmix64 of (seed, i): unrelated streams for neighbouring i. */
	uint64_t z = o->seed * 0x9E3779B97F4A7C15ULL + (i + 1) * 0xBF58476D1CE4E5B9ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return z ? z : 1;
}

size_t bench_logsize(uint64_t *s, size_t lo, size_t hi)
{
	uint64_t r = bench_rand(s);
	int bits_lo = 63 - __builtin_clzll(lo), bits_hi = 63 - __builtin_clzll(hi);
	int band = bits_lo + (int)(r % (uint64_t)(bits_hi - bits_lo + 1));
	size_t a = (size_t)1 << band, b = a * 2 - 1;

	if (a < lo)
		a = lo;
	if (b > hi)
		b = hi;
	return a + (size_t)((r >> 16) % (b - a + 1));
}

void bench_fill(void *p, size_t n, uint64_t v)
{
	unsigned char *c = p;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i += 64)
		c[i] = (unsigned char)(v + i);
	c[n - 1] = (unsigned char)v;
	c[0] = (unsigned char)v;
}

void bench_add(struct bench_work *w, uint64_t ops, uint64_t bytes, uint64_t check)
{
	__atomic_add_fetch(&w->ops, ops, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->bytes, bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->check, check, __ATOMIC_RELAXED);
}

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ----------------------------------------------------------------- threads */

struct start {
	void *(*fn)(void *);
	void *arg;
	pthread_barrier_t *go;
};

static void *trampoline(void *p)
{
	struct start *s = p;

	pthread_barrier_wait(s->go);
	return s->fn(s->arg);
}

void bench_run_indexed(const char *name, const struct bench_opts *o,
		       void *(*fn)(void *), struct bench_work *w)
{
	int ids[256];
	double t0;

	for (int i = 0; i < o->threads && i < 256; i++)
		ids[i] = i;
	t0 = bench_now();
	bench_threads(o->threads, fn, ids, sizeof(ids[0]));
	bench_report(name, o, w, "ops", bench_now() - t0);
}

void bench_threads(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
	pthread_t th[256];
	struct start st[256];
	pthread_barrier_t go;

	if (n < 1 || n > 256)
		bench_die(NULL, "thread count out of range");
	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		pthread_attr_t attr;

		st[i] = (struct start){fn, (char *)args + (size_t)i * arg_size, &go};
		pthread_attr_init(&attr);
		/* Set at creation: the thread starts on its CPU, and an
		 * allocator that places threads sees where from the start. */
		if (pin_n)
			pin_attr(&attr, pin_cpus[i % pin_n]);
		if (pthread_create(&th[i], &attr, trampoline, &st[i]))
			bench_die(NULL, "pthread_create failed");
		pthread_attr_destroy(&attr);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
}

/* ------------------------------------------------------------------ report */

/* Which allocator library is mapped into this process, from
 * /proc/self/maps. Runs after the timed part. */
static void which_malloc(char *out, size_t len)
{
	static const char *const libs[] = {
		"libnumashim", "libjemalloc", "libmimalloc", "libtcmalloc", NULL,
	};
	static char buf[1 << 16];
	FILE *f = fopen("/proc/self/maps", "r");

	snprintf(out, len, "glibc");
	if (f == NULL)
		return;
	setvbuf(f, buf, _IOFBF, sizeof(buf));
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		for (int i = 0; libs[i]; i++) {
			char *p = strstr(line, libs[i]);

			if (p) {
				p[strcspn(p, "\n")] = 0;
				snprintf(out, len, "%s", p);
				fclose(f);
				return;
			}
		}
	}
	fclose(f);
}

void bench_report(const char *name, const struct bench_opts *o,
		  const struct bench_work *w, const char *unit, double secs)
{
	char lib[128];

	which_malloc(lib, sizeof(lib));
	printf("%s: threads %d scale %g: %llu %s %.1f MiB in %.3f s = %.3f M%s/s; "
	       "check %llx; malloc %s\n",
	       name, o->threads, o->scale, (unsigned long long)w->ops, unit,
	       w->bytes / 1048576.0, secs, secs > 0 ? w->ops / secs / 1e6 : 0, unit,
	       (unsigned long long)(w->check & 0xffff), lib);
	fflush(stdout);
}
