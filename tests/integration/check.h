/* Shared helpers for the integration programs: checks that say what failed.
 *
 * Every check prints "FAIL file:line: what(args): expected X, got Y" and
 * counts the failure; the program exits 1 if any check failed.  Sizes go
 * through volatile variables (see HIDE) so the compiler neither warns about
 * nor folds calls such as malloc(SIZE_MAX). */
#ifndef NUMASHIM_TESTS_INTEGRATION_CHECK_H
#define NUMASHIM_TESTS_INTEGRATION_CHECK_H

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int check_failures;

__attribute__((format(printf, 3, 4), unused))
static void check_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	__atomic_add_fetch(&check_failures, 1, __ATOMIC_RELAXED);
}

/* CHECK(cond, "what(args): expected X, got %p", got) */
#define CHECK(cond, ...) \
	do { if (!(cond)) check_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Launder a value through a volatile so the compiler cannot reason about it. */
#define HIDE(x) ({ __typeof__(x) volatile hide_ = (x); hide_; })

/* Fill / verify a block with a pattern derived from a seed. */
static inline unsigned char pat_byte(uintptr_t seed, size_t i)
{
	return (unsigned char)((seed * 131u + i * 7u + (i >> 8)) ^ 0x5a);
}

__attribute__((unused))
static void pat_fill(void *p, size_t n, uintptr_t seed)
{
	unsigned char *c = (unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		c[i] = pat_byte(seed, i);
}

/* Returns the index of the first wrong byte, or (size_t)-1 if all match. */
__attribute__((unused))
static size_t pat_find_bad(const void *p, size_t n, uintptr_t seed)
{
	const unsigned char *c = (unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != pat_byte(seed, i))
			return i;
	return (size_t)-1;
}

/* A "FIELD: N kB" line of /proc/self/status (VmHWM, RssAnon, VmLck...), in
 * KiB; -1 when it cannot be read. */
__attribute__((unused))
static long status_kib(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kib = strtol(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return kib;
}

/* Returns the path of the object that defines SYM as the program sees it
 * (dlsym(RTLD_DEFAULT)), or NULL. */
__attribute__((unused))
static const char *defining_object(const char *sym)
{
	Dl_info info;
	void *addr = dlsym(RTLD_DEFAULT, sym);

	if (addr == NULL || dladdr(addr, &info) == 0 || info.dli_fname == NULL)
		return NULL;
	return info.dli_fname;
}

/* True if SYM resolves into the file named by $NUMASHIM_LIB (compared by
 * real path, so symlinks and ./ do not matter).  Prints why not. */
__attribute__((unused))
static int served_by_shim(const char *sym)
{
	const char *lib = getenv("NUMASHIM_LIB");
	const char *obj = defining_object(sym);
	char a[PATH_MAX], b[PATH_MAX];

	if (lib == NULL || *lib == '\0') {
		printf("FAIL: NUMASHIM_LIB is not set\n");
		return 0;
	}
	if (obj == NULL) {
		printf("FAIL: dlsym(RTLD_DEFAULT, \"%s\"): expected a symbol in %s, got none\n",
		       sym, lib);
		return 0;
	}
	if (realpath(lib, a) == NULL || realpath(obj, b) == NULL || strcmp(a, b) != 0) {
		printf("FAIL: dlsym(RTLD_DEFAULT, \"%s\"): expected it in %s, got it in %s\n",
		       sym, lib, obj);
		return 0;
	}
	return 1;
}

#include <signal.h>

static void deadlock_guard_fire(int sig)
{
	static const char msg[] =
		"FAIL: still running when the deadlock guard fired (deadlock?)\n";
	(void)sig;
	(void)!write(1, msg, sizeof msg - 1);
	_exit(1);
}

/* Fail (exit 1, with a message) if the process has not finished in SECONDS:
 * a deadlock must fail the test, not hang it.  The handler only calls
 * async-signal-safe functions, so it works even inside a stuck malloc. */
__attribute__((unused))
static void deadlock_guard(unsigned seconds)
{
	signal(SIGALRM, deadlock_guard_fire);
	alarm(seconds);
}

#define CHECK_EXIT()                                                     \
	do {                                                             \
		if (check_failures) {                                    \
			printf("%d check(s) failed\n", check_failures);  \
			return 1;                                        \
		}                                                        \
		return 0;                                                \
	} while (0)

/* Allocates and frees 64-byte blocks for `ms` milliseconds: activity that
 * makes the shim's once-a-second statistics refresh due (jemalloc calls
 * the shim back about every 64 KiB a thread allocates). */
__attribute__((unused)) static void churn_ms(int ms)
{
	struct timespec a, b;
	void *volatile sink; /* per thread: a shared one would be freed twice */

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 1000; i++) {
			sink = malloc(64);
			free(sink);
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) * 1000 +
		 (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

#ifdef _GNU_SOURCE
#include <sched.h>

/* Pins the calling thread to `cpu` and waits until it runs there (the
 * kernel moves it at the next scheduling point); 0, or -1 said on stderr. */
__attribute__((unused))
static int check_pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s)) {
		perror("sched_setaffinity");
		return -1;
	}
	while (sched_getcpu() != cpu)
		sched_yield();
	return 0;
}
#endif

/* malloc+free of an unused block: allocation activity (jemalloc's per-thread
 * callback comes about every 64 KiB of it). The volatile store keeps the
 * compiler from removing the pair. */
__attribute__((unused))
static void check_churn(size_t size)
{
	static void *volatile sink;

	sink = malloc(size);
	free(sink);
}

#endif
