/* startup: short-lived processes, as a shell script, a build or a CGI
 * server runs them (cf. mimalloc-bench's use of short compiler and script
 * runs). Launcher threads fork and exec this same program with --child, a
 * tiny program that parses a little "configuration" into a hash table of
 * strdup'd strings, builds an output buffer, frees it all and exits; the
 * launcher waits for it. The allocator's start-up (initialisation,
 * metadata, what it maps and touches) and its fork handlers are paid once
 * per process, so this is where they show.
 *
 * The preload reaches the children through the environment (LD_PRELOAD is
 * inherited across exec).
 */
#include "bench/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "startup"
#define BUCKETS 256
#define ENTRIES 1500

struct entry {
	struct entry *next;
	char *key, *value;
};

static struct bench_opts opts;

/* The tiny program. Returns its exit status. Its seed is its number among
 * the run's children (--seed, from the launcher), not its pid: a run's
 * children then do the same work every time, and callgrind's count of a
 * run repeats (seeded by pid it moved by about 0.15 %). */
static int child(void)
{
	struct entry *table[BUCKETS] = {0};
	uint64_t seed = bench_seed(&opts, 0);
	char key[32], value[128], *out;
	size_t len = 0, cap = 256;
	unsigned sum = 0;

	for (int i = 0; i < ENTRIES; i++) {
		struct entry *e = malloc(sizeof(*e));
		size_t vl = bench_logsize(&seed, 4, sizeof(value) - 1);
		unsigned h = 0;

		if (e == NULL)
			return 2;
		snprintf(key, sizeof(key), "option.%d.%llu", i,
			 (unsigned long long)(bench_rand(&seed) % 1000));
		memset(value, 'a' + i % 26, vl);
		value[vl] = 0;
		for (const char *c = key; *c; c++)
			h = h * 31 + (unsigned char)*c;
		e->key = strdup(key);
		e->value = strdup(value);
		if (!e->key || !e->value)
			return 2;
		e->next = table[h % BUCKETS];
		table[h % BUCKETS] = e;
	}
	out = malloc(cap);
	for (int b = 0; b < BUCKETS && out; b++)
		for (struct entry *e = table[b]; e; e = e->next) {
			size_t n = strlen(e->key) + strlen(e->value) + 2;

			if (len + n + 1 > cap) {
				char *q = realloc(out, cap *= 2);

				if (q == NULL)
					return 2;
				out = q;
			}
			len += (size_t)sprintf(out + len, "%s=%s\n", e->key, e->value);
		}
	if (out == NULL)
		return 2;
	for (size_t i = 0; i < len; i += 97)
		sum += (unsigned char)out[i];
	free(out);
	for (int b = 0; b < BUCKETS; b++)
		while (table[b]) {
			struct entry *e = table[b];

			table[b] = e->next;
			free(e->key);
			free(e->value);
			free(e);
		}
	return sum == 0;   /* 0: the output had content */
}

static struct bench_work work;
static uint64_t per_launcher, next_child;
static char self[4096];   /* this program's path (readlink, not /proc/self/exe
			   * itself: under valgrind that is valgrind) */

static void *launcher(void *arg)
{
	char seed[24];
	char *argv[] = {(char *)NAME, (char *)"--child", (char *)"--seed", seed, NULL};
	uint64_t failed = 0;

	(void)arg;
	for (uint64_t i = 0; i < per_launcher; i++) {
		int status;
		pid_t pid;

		snprintf(seed, sizeof(seed), "%llu", (unsigned long long)
			 (opts.seed * 1000003u +
			  __atomic_fetch_add(&next_child, 1, __ATOMIC_RELAXED)));
		pid = fork();

		if (pid < 0)
			bench_die(NAME, "fork failed");
		if (pid == 0) {
			execv(self, argv);
			_exit(127);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failed++;
	}
	if (failed)
		bench_die(NAME, "a child process failed");
	bench_add(&work, per_launcher, 0, per_launcher);
	return NULL;
}

int main(int argc, char **argv)
{
	double t0;

	bench_init(argc, argv, NAME,
		   "Short-lived processes: threads fork+exec a tiny allocating\n"
		   "program (this one, --child) and wait for it.", 2, &opts);
	if (opts.child)
		return child();
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || n >= (ssize_t)sizeof(self) - 1)
		bench_die(NAME, "cannot read /proc/self/exe");
	self[n] = 0;
	per_launcher = bench_scaled(&opts, 400) / (uint64_t)opts.threads;
	if (per_launcher == 0)
		per_launcher = 1;
	t0 = bench_now();
	bench_threads(opts.threads, launcher, NULL, 0);
	bench_report(NAME, &opts, &work, "processes", bench_now() - t0);
	return 0;
}
