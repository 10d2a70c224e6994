/*
 * mmap_live: the placed-mapping table behind the stats segment's live mmap
 * figures, and System V segments' placement (run by mmap-live.test under
 * NUMASHIM_FAKE_NODES=2 NUMASHIM_INTERLEAVE_MIN=1M).
 *
 *   mmap_live unaligned|shm-remap|dontfork|many|shm-pieces
 *      does what the mode says with placed mappings, churns small blocks
 *      (the shim refreshes the segment from allocation activity), prints
 *      "ready PID BYTES COUNT" (the live mmap figures the segment must
 *      show) and waits for stdin to close. "dontfork" does so in a fork's
 *      child, which must not count the mapping its parent kept from it.
 *   mmap_live shm-policy
 *      a segment the program bound (mbind) and attached again after its
 *      detach keeps the program's policy; with huge pages reserved, a
 *      SHM_HUGETLB segment is left alone (prints "no huge pages" if none
 *      could be had).
 *   mmap_live commit-race
 *      32 threads each reserve 64 MiB PROT_NONE (placed), commit 2 MiB in
 *      it with MAP_FIXED and unmap it, 10,000 times: every commit must be
 *      placed as its reservation. A munmap's entries went after another
 *      thread had placed a mapping at the freed address and added its
 *      entry, which went with them (2 or 3 commits unplaced in 3 runs of 5
 *      before the fix; a race: a run may pass on the code before).
 *   mmap_live maxmap
 *      an mbind the kernel refuses with ENOMEM (vm.max_map_count reached)
 *      leaves that range alone: mappings made once there is room again are
 *      placed.
 * Exit: 0 ok, 1 a check failed, 2 could not set up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <numaif.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/check.h"

#define MiB ((size_t)1 << 20)

static char *map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static int policy_of(const void *p)
{
	int mode = -1;
	unsigned long mask[16] = { 0 };

	if (get_mempolicy(&mode, mask, sizeof(mask) * 8, (void *)p, MPOL_F_ADDR)) {
		perror("get_mempolicy");
		exit(2);
	}
	return mode;
}

static bool mapped(const void *p)
{
	unsigned char v;

	return mincore((void *)p, 4096, &v) == 0 || errno != ENOMEM;
}

static int segment(size_t len, int flags)
{
	return shmget(IPC_PRIVATE, len, IPC_CREAT | 0600 | flags);
}

/* Prints what the segment must show once refreshed, and waits. */
static int ready(size_t bytes, size_t count)
{
	char c;

	churn_ms(2200);
	printf("ready %d %zu %zu\n", (int)getpid(), bytes, count);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

static int live(const char *m)
{
	if (strcmp(m, "unaligned") == 0) {
		/* The kernel unmaps whole pages: munmap(p, 1) took the first. */
		char *p = map(4 * MiB);

		if (munmap(p, 1) || munmap(p + 4096, 4 * MiB - 4096))
			return 2;
		return ready(0, 0);
	}
	if (strcmp(m, "shm-remap") == 0) {
		/* A small segment attached with SHM_REMAP over the start of a
		 * placed mapping, then detached: the rest stays mapped. */
		char *p = map(8 * MiB);
		int id = segment(64 * 1024, 0);
		void *s = id < 0 ? (void *)-1 : shmat(id, p, SHM_REMAP);

		if (id >= 0)
			shmctl(id, IPC_RMID, NULL);
		if (s != p || shmdt(s))
			return 2;
		return ready(8 * MiB - 64 * 1024, 1);
	}
	if (strcmp(m, "dontfork") == 0) {
		char *p = map(8 * MiB);
		pid_t pid;

		if (madvise(p, 8 * MiB, MADV_DONTFORK))
			return 2;
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			return ready(0, 0);
		return pid < 0 || waitpid(pid, NULL, 0) != pid ? 2 : 0;
	}
	if (strcmp(m, "shm-pieces") == 0) {
		/* shmdt detaches every piece of an attach: the rest of one
		 * with a hole unmapped, one whose head is unmapped, one moved
		 * by mremap over a placed mapping. */
		char *s[3], *a, *b, *c, *to = map(8 * MiB), *moved;

		for (int i = 0; i < 3; i++) {
			int id = segment(8 * MiB, 0);

			s[i] = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
			if (id >= 0)
				shmctl(id, IPC_RMID, NULL);
			if (s[i] == (void *)-1)
				return 2;
		}
		a = s[0];
		b = s[1];
		c = s[2];
		moved = mremap(c, 8 * MiB, 8 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (munmap(a + 2 * MiB, 2 * MiB) || munmap(b, 2 * MiB) ||
		    moved != to || shmdt(a) || shmdt(b) || shmdt(moved))
			return 2;
		CHECK(!mapped(a + 4 * MiB) && !mapped(b + 2 * MiB) && !mapped(moved),
		      "shm-pieces: the kernel left a piece attached");
		if (check_failures)
			return 1;
		return ready(0, 0);
	}
	if (strcmp(m, "many") == 0) {
		/* More than the table's first 512 entries (each its own VMA:
		 * a PROT_NONE first page keeps neighbours apart), and an
		 * mremap of a mapping made after them, which is bound in runs
		 * under huge pages and must be found to be bound again. */
		size_t len = 16 * MiB + 8192;
		char *g;

		for (int i = 0; i < 600; i++)
			if (mprotect(map(2 * MiB), 4096, PROT_NONE))
				return 2;
		g = mremap(map(len), len, 40 * MiB, MREMAP_MAYMOVE);
		CHECK(g != MAP_FAILED, "many: mremap of the 601st mapping: %s",
		      g == MAP_FAILED ? strerror(errno) : "ok");
		if (check_failures)
			return 1;
		return ready(600 * 2 * MiB + 40 * MiB, 601);
	}
	return 2;
}

static int shm_policy(void)
{
	unsigned long node0 = 1;
	int id = segment(8 * MiB, 0), hid;
	char *a, *b, *h;

	if (id < 0)
		return 2;
	a = shmat(id, NULL, 0);
	if (a == (void *)-1)
		return 2;
	CHECK(policy_of(a) == MPOL_INTERLEAVE, "first attach: policy %d, want interleave",
	      policy_of(a));
	if (mbind(a, 8 * MiB, MPOL_BIND, &node0, 64, 0))
		return 2;
	shmdt(a);
	b = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL);
	if (b == (void *)-1)
		return 2;
	CHECK(policy_of(b) == MPOL_BIND,
	      "attached again after the program's mbind: policy %d, want bind (%d)",
	      policy_of(b), MPOL_BIND);
	shmdt(b);

	hid = segment(4 * MiB, SHM_HUGETLB);
	h = hid < 0 ? (void *)-1 : shmat(hid, NULL, 0);
	if (hid >= 0)
		shmctl(hid, IPC_RMID, NULL);
	if (h == (void *)-1) {
		printf("shm-policy: no huge pages (%s): SHM_HUGETLB not checked\n",
		       strerror(errno));
	} else {
		CHECK(policy_of(h) == MPOL_DEFAULT,
		      "SHM_HUGETLB segment: policy %d, want none (hugetlb is left alone)",
		      policy_of(h));
		printf("shm-policy: SHM_HUGETLB checked\n");
		shmdt(h);
	}
	return check_failures ? 1 : 0;
}

/* One-page mappings, read-only and writable in turn so that none merge,
 * until the kernel refuses one. Then, one free slot at a time: a small
 * writable mapping, and a big one right below it, which the kernel merges
 * into the small one's VMA; binding it needs a VMA of its own, and mbind
 * fails with ENOMEM. */
static int maxmap(void)
{
	size_t n = 0, cap = 1 << 17, len = 4 * MiB + 4096;
	char **pages = malloc(cap * sizeof(*pages)), *small = MAP_FAILED;
	char *big = MAP_FAILED, *later;

	if (pages == NULL)
		return 2;
	for (; n < cap; n++) {
		pages[n] = mmap(NULL, 4096, n % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pages[n] == MAP_FAILED)
			break;
	}
	if (n == cap || n < 200)
		return 2;
	for (int k = 0; k < 50 && big == MAP_FAILED; k++) {
		munmap(pages[--n], 4096);
		if (small == MAP_FAILED)
			small = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		else
			big = mmap(small - len, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	for (int i = 0; i < 100; i++)
		munmap(pages[--n], 4096);
	later = map(4 * MiB);
	printf("maxmap: the big mapping %s, merged with its neighbour: %s\n",
	       big == MAP_FAILED ? "failed" : "made",
	       big != MAP_FAILED && big + len == small ? "yes" : "no");
	CHECK(policy_of(later) == MPOL_INTERLEAVE,
	      "a big mapping made once there is room again: policy %d, want interleave",
	      policy_of(later));
	return check_failures ? 1 : 0;
}

#define RACE_THREADS 32
#define RACE_ROUNDS 10000
static long race_unplaced;

static void *commit_rounds(void *unused)
{
	(void)unused;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		char *r = mmap(NULL, 64 * MiB, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		char *c;

		if (r == MAP_FAILED)
			return (void *)1;
		c = mmap(r + 8 * MiB, 2 * MiB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (c == MAP_FAILED || policy_of(c) != MPOL_INTERLEAVE)
			__atomic_add_fetch(&race_unplaced, 1, __ATOMIC_RELAXED);
		munmap(r, 64 * MiB);
	}
	return NULL;
}

static int commit_race(void)
{
	pthread_t t[RACE_THREADS];
	void *rc;
	int n = 0, bad = 0;

	for (; n < RACE_THREADS; n++)
		if (pthread_create(&t[n], NULL, commit_rounds, NULL))
			break;
	for (int i = 0; i < n; i++)
		if (pthread_join(t[i], &rc) == 0 && rc)
			bad = 1;
	if (n < RACE_THREADS || bad) {
		printf("commit-race: could not set up (%d threads)\n", n);
		return 2;
	}
	CHECK(race_unplaced == 0, "commit-race: %ld MAP_FIXED commits of %d not placed as their "
	      "reservation", race_unplaced, RACE_THREADS * RACE_ROUNDS);
	printf("commit-race: %ld commits of %d not placed\n", race_unplaced,
	       RACE_THREADS * RACE_ROUNDS);
	return check_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2)
		return 2;
	if (strcmp(argv[1], "shm-policy") == 0)
		return shm_policy();
	if (strcmp(argv[1], "maxmap") == 0)
		return maxmap();
	if (strcmp(argv[1], "commit-race") == 0)
		return commit_race();
	return live(argv[1]);
}
