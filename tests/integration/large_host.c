/*
 * Large buffers, mmap interposition and thread placement, checked on this
 * host under an emulated topology (NUMASHIM_FAKE_NODES=2). Placement itself
 * needs a multi-node guest (tests/vm); here we check the policy numashim
 * gave each mapping, which /proc/self/numa_maps shows exactly
 * ("interleave:0", "prefer:0", "bind:0", "default").
 *
 *   usage: large_host malloc|threshold|tiny|classes|classes-taken|calloc|mmap|program|threads|nested
 * Each prints what it found and exits 1 on the first wrong policy.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static int failures;

/* The numa_maps policy of the mapping that holds p, e.g. "interleave:0". */
static const char *policy_of(const void *p, char *out, size_t len)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	FILE *nm = fopen("/proc/self/numa_maps", "r");
	unsigned long lo, hi, start = 0, a;
	char line[512], pol[128];

	snprintf(out, len, "?");
	while (maps && fgets(line, sizeof(line), maps))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    (uintptr_t)p >= lo && (uintptr_t)p < hi)
			start = lo;
	while (nm && start && fgets(line, sizeof(line), nm))
		if (sscanf(line, "%lx %127s", &a, pol) == 2 && a == start)
			snprintf(out, len, "%s", pol);
	if (maps)
		fclose(maps);
	if (nm)
		fclose(nm);
	return out;
}

static void expect(const char *what, const void *p, const char *want)
{
	char got[128];

	policy_of(p, got, sizeof(got));
	if (strcmp(got, want) == 0) {
		printf("ok   %-44s %s\n", what, got);
	} else {
		printf("FAIL %-44s policy %s, expected %s\n", what, got, want);
		failures++;
	}
}

static void touch(void *p, size_t len)
{
	memset(p, 1, len);
}

/* user_threshold: run with MALLOC_CONF=oversize_threshold:...; the
 * user's jemalloc option is kept, so malloc's large blocks stay on the
 * thread's node, while the calls numashim checks itself still interleave. */
static void test_malloc(bool user_threshold)
{
	char *big = malloc(256 * MiB), *small = malloc(100), *mid = malloc(8 * MiB);
	char *grown = malloc(1 * MiB), *zeroed = calloc(1, 96 * MiB), *al = NULL;

	if (!big || !small || !mid || !grown || !zeroed ||
	    posix_memalign((void **)&al, 4096, 96 * MiB))
		exit(2);
	touch(big, 256 * MiB);
	if (user_threshold)
		expect("malloc(256 MiB), threshold from MALLOC_CONF", big, "prefer:0");
	else
		expect("malloc(256 MiB)", big, "interleave:0");
	expect("malloc(100)", small, "prefer:0");
	expect("malloc(8 MiB) (below NUMASHIM_INTERLEAVE_MIN)", mid, "prefer:0");
	expect("calloc(1, 96 MiB)", zeroed, "interleave:0");
	expect("posix_memalign(4096, 96 MiB)", al, "interleave:0");
	grown = realloc(grown, 128 * MiB);
	expect("realloc(1 MiB -> 128 MiB)", grown, "interleave:0");
	grown = realloc(grown, 2 * MiB);
	expect("realloc(128 MiB -> 2 MiB)", grown, "prefer:0");
	free(big);
	free(small);
	free(mid);
	free(grown);
	free(zeroed);
	free(al);
}

/* Run with NUMASHIM_INTERLEAVE_MIN=4K, below jemalloc's thread cache
 * limit (32 KiB): the threshold is raised above it, so malloc, calloc and
 * memalign agree on every size (malloc's cached sizes were not
 * interleaved, calloc's and memalign's were). */
static void test_tiny(void)
{
	static const size_t sizes[] = { 4096, 20000, 32768, 40000, 200000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const char *want = sizes[i] > 32768 ? "interleave:0" : "prefer:0";
		char what[3][48];
		void *p[3] = { malloc(sizes[i]), calloc(1, sizes[i]), memalign(64, sizes[i]) };

		if (!p[0] || !p[1] || !p[2])
			exit(2);
		snprintf(what[0], sizeof(what[0]), "malloc(%zu)", sizes[i]);
		snprintf(what[1], sizeof(what[1]), "calloc(1, %zu)", sizes[i]);
		snprintf(what[2], sizeof(what[2]), "memalign(64, %zu)", sizes[i]);
		for (int k = 0; k < 3; k++) {
			touch(p[k], sizes[i]);
			expect(what[k], p[k], want);
		}
	}
}

/* Run with NUMASHIM_INTERLEAVE_MIN=64M: a block is large by its size
 * class, in every call. 60M is of the 64M class, 56M of its own: malloc
 * and calloc did not interleave 60M while the aligned calls and realloc
 * did (jemalloc tests the class there), and realloc then moved a 60M
 * block back to the node to grow it by 4 KiB. taken: run with
 * MALLOC_CONF=oversize_threshold above 64M, which keeps malloc's blocks
 * local; the other calls still go by the class (calloc and memalign of
 * 60M stayed local there). */
static void test_classes(bool taken)
{
	static const size_t sizes[] = { 56 * MiB, 56 * MiB + 1, 60 * MiB, 64 * MiB };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		const char *want = n > 56 * MiB ? "interleave:0" : "prefer:0";
		void *p[6] = { malloc(n), calloc(1, n), memalign(64, n),
			       aligned_alloc(4096, n), NULL, realloc(malloc(64), n) };
		static const char *const call[6] = { "malloc", "calloc", "memalign(64)",
						     "aligned_alloc(4096)", "posix_memalign(4096)",
						     "realloc(64 ->)" };
		char what[64];

		if (posix_memalign(&p[4], 4096, n))
			exit(2);
		for (int k = 0; k < 6; k++) {
			if (p[k] == NULL)
				exit(2);
			snprintf(what, sizeof(what), "%s %zu", call[k], n);
			expect(what, p[k], taken && k == 0 ? "prefer:0" : want);
		}
		if (n == 60 * MiB && !taken) {
			void *grown = realloc(p[0], n + 4096);

			if (grown == NULL)
				exit(2);
			if (grown != p[0]) {
				printf("FAIL realloc(60M -> 60M + 4K) moved the block\n");
				failures++;
			}
			expect("realloc(60M -> 60M + 4K)", grown, want);
			p[0] = grown;
		}
		for (int k = 0; k < 6; k++)
			free(p[k]);
	}
}

/* calloc of a block that reuses freed, written memory: every byte zero,
 * and its whole pages given back rather than cleared one by one (jemalloc
 * did memset in numashim's arenas: resident, 20 times slower). */
static void test_calloc(void)
{
	static const size_t sizes[] = { 65536, 100000, 2000000, 2000001, 3 * MiB + 7 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], pages = (n + 4095) / 4096, resident = 0, nonzero = 0;
		unsigned char *vec = malloc(pages + 1);

		for (int round = 0; round < 3; round++) {
			char *w = malloc(n), *z;

			if (w == NULL || vec == NULL)
				exit(2);
			memset(w, 0xa5, n);
			free(w);
			z = calloc(1, n);
			if (z == NULL)
				exit(2);
			/* Resident pages of its whole pages, before any read
			 * (a read maps the zero page, which mincore counts). */
			{
				uintptr_t lo = ((uintptr_t)z + 4095) & ~(uintptr_t)4095;
				uintptr_t hi = ((uintptr_t)z + n) & ~(uintptr_t)4095;

				if (hi > lo && mincore((void *)lo, hi - lo, vec) == 0)
					for (size_t k = 0; k < (hi - lo) / 4096; k++)
						resident += vec[k] & 1;
			}
			for (size_t k = 0; k < n; k++)
				nonzero += z[k] != 0;
			free(z);
		}
		if (nonzero) {
			printf("FAIL calloc(1, %zu) after a written block: %zu bytes not zero\n", n, nonzero);
			failures++;
		} else if (resident > 3 * 2) {
			printf("FAIL calloc(1, %zu) after a written block: %zu of its pages resident "
			       "over 3 rounds (cleared, not given back)\n", n, resident);
			failures++;
		} else {
			printf("ok   calloc(1, %zu) after a written block: zero, %zu pages resident\n",
			       n, resident);
		}
		free(vec);
	}
}

static void *map(size_t len, int flags, int fd)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void test_mmap(void)
{
	char path[] = "/tmp/numashim-large-XXXXXX";
	int fd = mkstemp(path);
	void *priv, *shared, *file, *small, *fixed, *below, *at;

	if (fd < 0 || ftruncate(fd, (off_t)(128 * MiB)))
		exit(2);
	unlink(path);
	priv = map(128 * MiB, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	shared = map(128 * MiB, MAP_SHARED | MAP_ANONYMOUS, -1);
	file = map(128 * MiB, MAP_SHARED, fd);
	small = map(1 * MiB, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	/* Run with NUMASHIM_INTERLEAVE_MIN=64M: a mapping is large from 64
	 * MiB itself (a malloc block from 56 MiB + 1, by its size class). */
	below = map(60 * MiB, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	at = map(64 * MiB, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	expect("mmap anonymous private 128 MiB", priv, "interleave:0");
	expect("mmap anonymous 60 MiB (below the threshold)", below, "default");
	expect("mmap anonymous 64 MiB (the threshold)", at, "interleave:0");
	expect("mmap anonymous shared 128 MiB", shared, "interleave:0");
	expect("mmap of a file 128 MiB", file, "default");
	expect("mmap anonymous 1 MiB", small, "default");
	/* MAP_FIXED over memory the program manages: left alone. */
	munmap(priv, 128 * MiB);
	fixed = mmap(priv, 128 * MiB, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	expect("mmap MAP_FIXED 128 MiB", fixed, "default");
	munmap(fixed, 128 * MiB);
	munmap(shared, 128 * MiB);
	munmap(file, 128 * MiB);
	munmap(small, 1 * MiB);
	munmap(below, 60 * MiB);
	munmap(at, 64 * MiB);
	close(fd);
}

/* The program's own NUMA calls win over numashim's. */
static void *own_policy_thread(void *unused)
{
	unsigned long mask = 1;
	char *p;

	if (set_mempolicy(MPOL_BIND, &mask, 64)) {
		perror("set_mempolicy");
		exit(2);
	}
	p = malloc(1 * MiB);
	touch(p, 1 * MiB);
	/* Not from a node arena (those are prefer:N): from jemalloc's default
	 * arena, whose pages follow this thread's own policy. */
	expect("thread with its own set_mempolicy: malloc", p, "default");
	free(p);
	return NULL;
}

static void test_program(void)
{
	unsigned long mask = 1;
	void *p = map(128 * MiB, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	pthread_t t;

	if (mbind(p, 64 * MiB, MPOL_BIND, &mask, 64, 0)) {
		perror("mbind");
		exit(2);
	}
	expect("program mbind(MPOL_BIND) on a large mapping", p, "bind:0");
	expect("rest of that mapping", (char *)p + 64 * MiB, "interleave:0");
	munmap(p, 128 * MiB);
	/* Moved by mremap, a mapping the program bound stays the program's:
	 * a heap committed inside it with MAP_FIXED (a JVM's way) is not
	 * placed by numashim (it was, the mark lost in the move). */
	p = map(128 * MiB, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (mbind(p, 128 * MiB, MPOL_BIND, &mask, 64, 0)) {
		perror("mbind");
		exit(2);
	}
	p = mremap(p, 128 * MiB, 256 * MiB, MREMAP_MAYMOVE);
	if (p == MAP_FAILED ||
	    mmap((char *)p + 16 * MiB, 16 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		perror("mremap or mmap");
		exit(2);
	}
	expect("mbind'ed mapping grown by mremap", p, "bind:0");
	expect("MAP_FIXED inside it after the move", (char *)p + 16 * MiB,
	       "default");
	munmap(p, 256 * MiB);
	pthread_create(&t, NULL, own_policy_thread, NULL);
	pthread_join(t, NULL);
}

static void *report_cpus(void *out)
{
	cpu_set_t s;

	sched_getaffinity(0, sizeof(s), &s);
	*(int *)out = CPU_COUNT(&s) == 1 ? (CPU_ISSET(0, &s) ? 0 : 1) : -1;
	return NULL;
}

/* The calling thread makes n threads (n even, at most 8): half must be
 * pinned to CPU 0 and half to CPU 1. */
static void expect_spread(int n, const char *whose)
{
	pthread_t t[8];
	int where[8], per[2] = { 0, 0 };

	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, report_cpus, &where[i]);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (where[i] >= 0)
			per[where[i]]++;
	}
	printf("%s NUMASHIM_THREADS=spread: %s%d threads -> %d on node 0, %d on node 1\n",
	       per[0] == n / 2 && per[1] == n / 2 ? "ok  " : "FAIL", whose, n,
	       per[0], per[1]);
	if (per[0] != n / 2 || per[1] != n / 2)
		failures++;
}

static void test_threads(void)
{
	expect_spread(8, "");
}

/* The same by vfork and an exec call of each kind in the child (no fork
 * handler runs there either). */
static int vfork_exec_cpus(const char *how)
{
	static char *argv[] = { "sh", "-c", "exit $(nproc)", NULL };
	extern char **environ;
	int status = -1, fd = open("/bin/sh", O_RDONLY | O_CLOEXEC);
	pid_t pid = vfork();

	if (pid == 0) {
		if (strcmp(how, "execve") == 0)
			execve("/bin/sh", argv, environ);
		else if (strcmp(how, "execv") == 0)
			execv("/bin/sh", argv);
		else if (strcmp(how, "execl") == 0)
			execl("/bin/sh", "sh", "-c", "exit $(nproc)", (char *)NULL);
		else if (strcmp(how, "execle") == 0)
			execle("/bin/sh", "sh", "-c", "exit $(nproc)", (char *)NULL,
			       environ);
		else if (strcmp(how, "execvp") == 0)
			execvp("sh", argv);
		else if (strcmp(how, "execlp") == 0)
			execlp("sh", "sh", "-c", "exit $(nproc)", (char *)NULL);
		else if (strcmp(how, "execvpe") == 0)
			execvpe("sh", argv, environ);
		else if (strcmp(how, "fexecve") == 0)
			fexecve(fd, argv, environ);
		_exit(255);
	}
	if (fd >= 0)
		close(fd);
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

/* The CPU count of a program a placed thread starts without fork (the
 * shell's answer: nproc counts the CPUs it may run on), by `how`. */
static int started_cpus(const char *how)
{
	char *argv[] = { "sh", "-c", "exit $(nproc)", NULL };
	extern char **environ;
	int status = -1, n = -1;
	pid_t pid;
	FILE *f;

	if (strncmp(how, "vfork+", 6) == 0) {
		n = vfork_exec_cpus(how + 6);
	} else if (strcmp(how, "posix_spawn") == 0) {
		if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) == 0 &&
		    waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			n = WEXITSTATUS(status);
	} else if (strcmp(how, "posix_spawnp") == 0) {
		if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) == 0 &&
		    waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			n = WEXITSTATUS(status);
	} else if (strcmp(how, "system") == 0) {
		status = system(argv[2]);
		if (status != -1 && WIFEXITED(status))
			n = WEXITSTATUS(status);
	} else if ((f = popen("nproc", "r")) != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static int first_cpu(const cpu_set_t *s)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, s))
			return c;
	return -1;
}

struct move {
	pthread_t whom;
	cpu_set_t to;
};

/* Another thread of the program re-pins `whom` while it waits in a call. */
static void *mover(void *arg)
{
	struct move *m = arg;

	usleep(300 * 1000);
	pthread_setaffinity_np(m->whom, sizeof(m->to), &m->to);
	return NULL;
}

/* The program's own change during system() wins: numashim gives the pin
 * back only over the CPUs it set itself. */
static void expect_program_pin_kept(const cpu_set_t *pin, const cpu_set_t *all)
{
	struct move m = { .whom = pthread_self() };
	cpu_set_t after;
	pthread_t t;

	CPU_ZERO(&m.to);
	for (int c = 0; c < CPU_SETSIZE && CPU_COUNT(&m.to) == 0; c++)
		if (CPU_ISSET(c, all) && !CPU_ISSET(c, pin))
			CPU_SET(c, &m.to);
	if (CPU_COUNT(&m.to) == 0) {
		printf("FAIL the placed thread has every CPU: no pin to test\n");
		failures++;
		return;
	}
	pthread_create(&t, NULL, mover, &m);
	if (system("sleep 1") == -1)
		perror("system");
	pthread_join(t, NULL);
	sched_getaffinity(0, sizeof(after), &after);
	if (CPU_EQUAL(&after, &m.to)) {
		printf("ok   a placed thread re-pinned by the program during system() "
		       "keeps the program's CPU\n");
	} else {
		printf("FAIL a placed thread re-pinned by the program to CPU %d "
		       "during system() is on %d CPU(s) after, CPU %d %s\n",
		       first_cpu(&m.to), CPU_COUNT(&after), first_cpu(&after),
		       CPU_EQUAL(&after, pin) ? "(numashim's pin)" : "first");
		failures++;
	}
}

/* nested: main makes a manager thread, which makes 4 workers (a JVM's
 * launcher runs Java's main in a new thread that way), forks and starts
 * programs. */
static void *manager(void *unused)
{
	static const char *const how[] = {
		"posix_spawn", "posix_spawnp", "system", "popen",
		"vfork+execve", "vfork+execv", "vfork+execl", "vfork+execle",
		"vfork+execvp", "vfork+execlp", "vfork+execvpe", "vfork+fexecve",
	};
	cpu_set_t pin, after;
	int status, cpus = -1;
	cpu_set_t all, s;
	pid_t child;

	expect_spread(4, "a placed thread's ");
	/* The child of a fork is a process of its own: the process's CPUs,
	 * not the one node its parent thread was placed on. */
	sched_getaffinity(getpid(), sizeof(all), &all);
	child = fork();
	if (child == 0)
		_exit(sched_getaffinity(0, sizeof(s), &s) ? 255 : CPU_COUNT(&s));
	if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status))
		cpus = WEXITSTATUS(status);
	if (cpus == CPU_COUNT(&all)) {
		printf("ok   a child forked by a placed thread has the process's %d CPUs\n",
		       cpus);
	} else {
		printf("FAIL a child forked by a placed thread has %d CPUs, the process %d\n",
		       cpus, CPU_COUNT(&all));
		failures++;
	}
	/* Nor does a program it starts by posix_spawn, system or popen, or
	 * by vfork and exec (no fork handler runs: they kept the one-node
	 * pin), and the thread has its pin again afterwards. */
	sched_getaffinity(0, sizeof(pin), &pin);
	for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
		cpus = started_cpus(how[i]);
		sched_getaffinity(0, sizeof(after), &after);
		if (cpus == CPU_COUNT(&all) && CPU_EQUAL(&pin, &after)) {
			printf("ok   a program a placed thread starts by %s has the "
			       "process's %d CPUs; the thread keeps its %d\n",
			       how[i], cpus, CPU_COUNT(&pin));
		} else {
			printf("FAIL a program a placed thread starts by %s has %d CPUs "
			       "(the process %d); the thread has %d after, %d before\n",
			       how[i], cpus, CPU_COUNT(&all), CPU_COUNT(&after),
			       CPU_COUNT(&pin));
			failures++;
		}
	}
	expect_program_pin_kept(&pin, &all);
	return NULL;
}

static void test_nested(void)
{
	pthread_t t;

	pthread_create(&t, NULL, manager, NULL);
	pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s malloc|threshold|tiny|classes|classes-taken|calloc|mmap|program|threads|nested\n",
			argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "malloc") == 0)
		test_malloc(false);
	else if (strcmp(argv[1], "tiny") == 0)
		test_tiny();
	else if (strcmp(argv[1], "classes") == 0)
		test_classes(false);
	else if (strcmp(argv[1], "classes-taken") == 0)
		test_classes(true);
	else if (strcmp(argv[1], "calloc") == 0)
		test_calloc();
	else if (strcmp(argv[1], "threshold") == 0)
		test_malloc(true);
	else if (strcmp(argv[1], "mmap") == 0)
		test_mmap();
	else if (strcmp(argv[1], "program") == 0)
		test_program();
	else if (strcmp(argv[1], "threads") == 0)
		test_threads();
	else if (strcmp(argv[1], "nested") == 0)
		test_nested();
	else
		return 2;
	return failures ? 1 : 0;
}
