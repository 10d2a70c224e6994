/*
 * spawn_time: what a process start costs under each preload, from
 * posix_spawn to the end of waitpid, in microseconds per process.
 *
 *   spawn_time [-n N] [-r ROUNDS] [--] CONF[,CONF...] PROG [ARG...]
 *
 * CONF is "-" (no preload; put "--" before a list that starts with it), a
 * library to preload, or VAR=VALUE@LIBRARY (the library with one more
 * environment variable). PROG gets the caller's environment, less
 * LD_PRELOAD, plus its CONF's. Each round runs PROG N times (default 400)
 * under every CONF in turn, so that a slow spell of the machine falls on
 * all of them alike; ROUNDS rounds (default 9). Prints, per CONF, the
 * median and the quartiles of the rounds' means. bench/spawn-time.sh runs
 * it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFS 16
#define MAX_ROUNDS 64
#define MAX_ENV 256

extern char **environ;

struct conf {
	const char *label;
	char *env[MAX_ENV];
	double us[MAX_ROUNDS];
};

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Whether environment entry `e` sets the variable that `var` (NAME=...)
 * sets. */
static bool same_name(const char *e, const char *var)
{
	size_t n = strcspn(var, "=");

	return strncmp(e, var, n) == 0 && e[n] == '=';
}

/* The caller's environment without LD_PRELOAD (and without the CONF's own
 * variable), then the CONF's. */
static int make_env(struct conf *c, char *spec)
{
	char *at = strchr(spec, '@'), *lib = at ? at + 1 : spec;
	int k = 0;

	if (at != NULL)
		*at = '\0';
	for (char **e = environ; *e; e++) {
		if (same_name(*e, "LD_PRELOAD=") ||
		    (at != NULL && same_name(*e, spec)))
			continue;
		if (k == MAX_ENV - 3) {
			fprintf(stderr, "spawn_time: more than %d environment "
				"variables\n", MAX_ENV - 3);
			return -1;
		}
		c->env[k++] = *e;
	}
	if (at != NULL)
		c->env[k++] = spec;
	if (strcmp(lib, "-") != 0 &&
	    asprintf(&c->env[k++], "LD_PRELOAD=%s", lib) < 0)
		return -1;
	c->env[k] = NULL;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static struct conf confs[MAX_CONFS];
	int n = 400, rounds = 9, nconf = 0, opt;
	char *list;

	while ((opt = getopt(argc, argv, "+n:r:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (argc - optind < 2 || n < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: spawn_time [-n N] [-r ROUNDS (1-%d)] "
			"CONF[,CONF...] PROG [ARG...]\n", MAX_ROUNDS);
		return 2;
	}
	list = argv[optind];
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		if (nconf == MAX_CONFS) {
			fprintf(stderr, "spawn_time: more than %d CONFs\n",
				MAX_CONFS);
			return 2;
		}
		confs[nconf].label = strdup(t);
		if (make_env(&confs[nconf++], t))
			return 1;
	}
	for (int r = 0; r < rounds; r++)
		for (int c = 0; c < nconf; c++) {
			double t0 = now_us();

			for (int i = 0; i < n; i++) {
				pid_t pid;
				int st = 0, rc;

				rc = posix_spawn(&pid, argv[optind + 1], NULL, NULL,
						 argv + optind + 1, confs[c].env);
				if (rc == 0 && waitpid(pid, &st, 0) != pid)
					rc = errno;
				if (rc || st != 0) {
					fprintf(stderr, "spawn_time: %s under %s: "
						"%s\n", argv[optind + 1],
						confs[c].label, rc ? strerror(rc) :
						"exit status not 0");
					return 1;
				}
			}
			confs[c].us[r] = (now_us() - t0) / n;
		}
	for (int c = 0; c < nconf; c++) {
		double *v = confs[c].us;

		qsort(v, (size_t)rounds, sizeof(*v), cmp);
		/* An even count's median is the mean of the middle two. */
		printf("  %-60s median %7.1f us  quartiles %7.1f-%.1f\n",
		       confs[c].label, rounds % 2 ? v[rounds / 2] :
		       (v[rounds / 2 - 1] + v[rounds / 2]) / 2, v[rounds / 4],
		       v[3 * rounds / 4]);
	}
	return 0;
}
