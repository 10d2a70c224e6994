/*
 * shm_attach: System V shared memory under the shim on an emulated
 * 2-node topology (run by shm.test with NUMASHIM_FAKE_NODES=2).
 *
 * Creates an 80 MiB segment (above NUMASHIM_INTERLEAVE_MIN, which the test
 * sets to 64M) and attaches it twice, and a 1 MiB one attached once. The
 * first attach of the big one must be placed (an interleave policy on the
 * shared object, which the second attach sees too); the second must be
 * counted as attached, not placed again and not blamed on the program; the
 * small one is left to the kernel as small. Then prints "ready PID" and
 * waits for stdin to close while the test reads its stats segment,
 * allocating a little meanwhile: the shim refreshes the segment from
 * allocation activity (about every 64 KiB), not from a timer.
 * Exit: 0 ok, 1 a check failed, 2 could not set up.
 */
#define _GNU_SOURCE
#include <numaif.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static int bad;

/* Makes a private segment of len bytes. */
static int segment(size_t len)
{
	int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);

	if (id < 0) {
		perror("shmget");
		exit(2);
	}
	return id;
}

/* Attaches segment id; the first attach marks it for removal, so it goes
 * with the last detach whatever happens to this program (Linux still lets
 * a removed segment be attached by id). */
static void *attach(int id)
{
	void *p = shmat(id, NULL, 0);

	shmctl(id, IPC_RMID, NULL);
	if (p == (void *)-1) {
		perror("shmat");
		exit(2);
	}
	return p;
}

static void expect_policy(const char *what, void *p, int want)
{
	int mode = -1;
	unsigned long mask[16] = { 0 };

	if (get_mempolicy(&mode, mask, sizeof(mask) * 8, p, MPOL_F_ADDR)) {
		perror("get_mempolicy");
		exit(2);
	}
	printf("%s: policy mode %d (want %d)\n", what, mode, want);
	if (mode != want)
		bad = 1;
}

int main(void)
{
	int big = segment(80 * MiB);
	char *a = attach(big), *b = attach(big);
	int small = segment(1 * MiB);
	char *s = attach(small);
	struct pollfd in = { .fd = 0, .events = POLLIN };
	char line[16];

	memset(a, 1, 4 * MiB);
	expect_policy("first attach", a, MPOL_INTERLEAVE);
	expect_policy("second attach", b, MPOL_INTERLEAVE);
	expect_policy("small segment", s, MPOL_DEFAULT);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (poll(&in, 1, 20) == 0) {
		static void *volatile sink;

		for (int i = 0; i < 64; i++) {
			sink = malloc(4096);
			free(sink);
		}
	}
	if (read(0, line, sizeof(line)) < 0)
		line[0] = 0;
	shmdt(a);
	shmdt(b);
	shmdt(s);
	return bad;
}
