/* A program that sandboxes itself with seccomp, as OpenSSH's
 * pre-authentication child does: its filter kills the process on the
 * NUMA, affinity and file system calls a sandbox does not allow.
 *
 *   sandbox prctl|syscall
 *     Allocates for 1.2 s (the statistics segment is made), installs the
 *     filter on the main thread (prctl(PR_SET_SECCOMP) or
 *     syscall(SYS_seccomp)), then: unmaps a large mapping placed before
 *     the filter; moves between CPU 0 and CPU 1 (moved by
 *     an unfiltered thread, as the scheduler or taskset would) while it
 *     allocates small, medium and large blocks and maps large anonymous
 *     memory; starts a thread that allocates; forks a child that
 *     allocates; allocates again past the next statistics refresh; exits.
 *     Every step must live through the filter (exit 0, "ok").
 */
#include "tests/integration/check.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_IF(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

static struct sock_filter filter[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	KILL_IF(SYS_mbind), KILL_IF(SYS_set_mempolicy), KILL_IF(SYS_get_mempolicy),
	KILL_IF(SYS_move_pages), KILL_IF(SYS_migrate_pages),
	KILL_IF(SYS_sched_getaffinity), KILL_IF(SYS_sched_setaffinity),
	KILL_IF(SYS_open), KILL_IF(SYS_openat), KILL_IF(SYS_unlink),
	KILL_IF(SYS_unlinkat), KILL_IF(SYS_ftruncate), KILL_IF(SYS_fallocate),
	KILL_IF(SYS_shmctl), KILL_IF(SYS_gettid), KILL_IF(SYS_tgkill),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

static pid_t main_tid;
static int want_cpu = -1; /* the mover's next job: -1 none, -2 end */

/* Unfiltered (the filter is the main thread's alone): moves main. */
static void *mover(void *unused)
{
	for (;;) {
		int cpu = __atomic_load_n(&want_cpu, __ATOMIC_ACQUIRE);
		cpu_set_t s;

		if (cpu == -2)
			return unused;
		if (cpu < 0) {
			usleep(1000);
			continue;
		}
		CPU_ZERO(&s);
		CPU_SET(cpu, &s);
		syscall(SYS_sched_setaffinity, main_tid, sizeof(s), &s);
		__atomic_store_n(&want_cpu, -1, __ATOMIC_RELEASE);
	}
}

static void move_main(int cpu)
{
	__atomic_store_n(&want_cpu, cpu, __ATOMIC_RELEASE);
	while (__atomic_load_n(&want_cpu, __ATOMIC_ACQUIRE) >= 0)
		usleep(1000);
}

static void churn(int rounds)
{
	static void *p[512];

	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < 512; i++) {
			p[i] = malloc(16 + (size_t)(i * 97) % 4000);
			CHECK(p[i] != NULL, "malloc");
			if (p[i])
				memset(p[i], i, 16);
		}
		for (int i = 0; i < 512; i++)
			free(p[i]);
	}
}

static void *worker(void *unused)
{
	churn(50);
	return unused;
}

static void sized(size_t n)
{
	char *b = malloc(n);

	CHECK(b != NULL, "malloc(%zu)", n);
	if (b) {
		memset(b, 1, n);
		free(b);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void churn_for(double secs)
{
	double end = now() + secs;

	while (now() < end)
		churn(10);
}

int main(int argc, char **argv)
{
	struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
	pthread_t m, t;
	void *placed;
	int status, rc;
	pid_t child;

	if (argc != 2 || (strcmp(argv[1], "prctl") && strcmp(argv[1], "syscall"))) {
		fprintf(stderr, "usage: %s prctl|syscall\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("pid %d\n", (int)getpid());
	main_tid = (pid_t)syscall(SYS_gettid);
	pthread_create(&m, NULL, mover, NULL);
	churn_for(1.2); /* past the first statistics refresh */
	/* Placed before the filter (in the table of placed mappings), unmapped
	 * under it: munmap took the table's lock there (gettid). */
	placed = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(placed != MAP_FAILED, "mmap before the filter");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		perror("PR_SET_NO_NEW_PRIVS");
		return 2;
	}
	rc = strcmp(argv[1], "prctl") == 0 ?
		prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) :
		(int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
	if (rc) {
		perror("seccomp");
		return 2;
	}
	printf("filter installed by %s\n", argv[1]);
	if (placed != MAP_FAILED)
		CHECK(munmap(placed, 8 << 20) == 0, "munmap of a mapping placed before the filter");
	for (int round = 0; round < 8; round++) {
		void *q;

		move_main(round % 2);
		churn(20);
		sized(256 << 10);
		sized(8 << 20); /* above the test's NUMASHIM_INTERLEAVE_MIN */
		q = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(q != MAP_FAILED, "mmap");
		if (q != MAP_FAILED) {
			memset(q, 1, 8 << 20);
			munmap(q, 8 << 20);
		}
	}
	printf("moved 8 times, allocating\n");
	CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	child = fork();
	if (child == 0) {
		churn(50);
		_exit(0);
	}
	CHECK(child > 0 && waitpid(child, &status, 0) == child &&
	      WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the forked child failed (status %#x)", status);
	churn_for(1.2); /* past the next refresh */
	__atomic_store_n(&want_cpu, -2, __ATOMIC_RELEASE);
	pthread_join(m, NULL);
	printf("%s\n", check_failures ? "FAIL" : "ok");
	CHECK_EXIT();
}
