/* The mmap family's edge cases under the shim (run with a placed mapping
 * live: NUMASHIM_FAKE_NODES=2 NUMASHIM_INTERLEAVE_MIN=1M), each also
 * meaningful under glibc alone.
 *
 *   mmap_edge signal   a worker mremaps a page in place (a no-op that looks
 *                      the table of placed mappings up) without end while
 *                      SIGUSR1's handler, in that very thread, does the
 *                      same: the worker must keep going (a handler that
 *                      came while its thread took the table's lock waited
 *                      for itself)
 *   mmap_edge fork     children made by _Fork() (no fork handler) while a
 *                      worker takes that lock without end: each child's
 *                      first mremap must return (it waited for a holder
 *                      that is not in its process)
 *   mmap_edge fork N newpid
 *                      the same with raw clone(CLONE_NEWPID) children: run
 *                      as pid 1 (unshare --pid --fork), each child is pid 1
 *                      of a namespace of its own, as its parent is
 *   mmap_edge flags    MAP_POPULATE, MAP_POPULATE|MAP_NONBLOCK, MAP_LOCKED
 *                      and PROT_NONE|MAP_LOCKED on 128 MiB, then MAP_LOCKED
 *                      and MAP_POPULATE under mlockall(MCL_FUTURE |
 *                      MCL_ONFAULT), then a plain mapping, MAP_POPULATE,
 *                      PROT_NONE and a malloc'd block under
 *                      mlockall(MCL_FUTURE), and a plain mapping after
 *                      munlockall: pages resident and locked as the kernel
 *                      makes them without the shim (all, none, all, none
 *                      but locked; none but locked twice; all locked
 *                      three times, none but locked; none)
 *                      and a shared read-only mapping under MCL_FUTURE (all
 *                      locked), and a fork's child's mapping (not locked:
 *                      the kernel does not pass it on)
 *   mmap_edge fixed-locked
 *                      a MAP_FIXED|MAP_LOCKED commit of 8 MiB inside a
 *                      128 MiB PROT_NONE reservation (placed), without
 *                      CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 1 MiB: the
 *                      commit fails with EAGAIN and the reservation stays
 *                      mapped, PROT_NONE (the shim's commit, made unlocked
 *                      then refused its lock, was unmapped: a hole)
 *   mmap_edge mcl-current [reserve]
 *                      mlockall(MCL_CURRENT) with a few small blocks
 *                      live: VmRSS then stays under 48 MiB (the shim's
 *                      64 MiB tag map, writable, was faulted in and locked
 *                      whole: 85 MB under 2 emulated nodes)
 *   mmap_edge mcl-race N
 *                      N rounds of a thread mapping 4 MiB while the main
 *                      thread calls munlockall under MCL_FUTURE: nothing
 *                      may stay locked
 */
#include "tests/integration/check.h"

#include <pthread.h>
#include <sched.h>
#include <linux/sched.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define BIG ((size_t)128 << 20)

static char *page3; /* three pages of the program's own (not placed) */
static volatile unsigned long iters, handled;

static void *placed(void)
{
	/* Over NUMASHIM_INTERLEAVE_MIN: placed, so the table is not empty. */
	void *p = mmap(NULL, BIG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	page3 = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || page3 == MAP_FAILED) {
		printf("FAIL mmap: %s\n", strerror(errno));
		exit(1);
	}
	return p;
}

static void in_place(char *a)
{
	mremap(a, 4096, 4096, 0);
}

static void on_usr1(int sig)
{
	(void)sig;
	in_place(page3 + 8192);
	handled++;
}

static void *remapper(void *unused)
{
	for (;;) {
		in_place(page3);
		iters++;
	}
	return unused;
}

static void pin(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one); /* best effort */
}

static void *remapper_cpu0(void *unused)
{
	pin(0);
	return remapper(unused);
}

static void *remapper_cpu1(void *unused)
{
	pin(1);
	return remapper(unused);
}

static void test_signal(int secs)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	unsigned long last = 0, sent = 0;
	int still = 0;
	time_t end;
	pthread_t t;

	placed();
	sigaction(SIGUSR1, &sa, NULL);
	/* On CPUs of their own: a signal then comes as an interrupt, at any
	 * instruction of the worker's, not only as it leaves a system call. */
	pin(0);
	pthread_create(&t, NULL, remapper_cpu1, NULL);
	for (end = time(NULL) + secs; time(NULL) < end;) {
		for (int i = 0; i < 1000; i++, sent++)
			pthread_kill(t, SIGUSR1);
		usleep(1000);
		if (iters != last) {
			last = iters;
			still = 0;
		} else if (++still > 1000) {
			check_fail(__FILE__, __LINE__, "signal: expected the worker to go on, got it "
				   "stuck after %lu calls, %lu signals sent, %lu handled (a deadlock)",
				   iters, sent, handled);
			/* Now: exit's own munmap calls would wait for it too. */
			fflush(stdout);
			_exit(1);
		}
	}
	printf("signal: %lu calls, %lu signals sent, %lu handled, no deadlock\n", iters, sent,
	       handled);
}

/* A child of the calling process: _Fork()'s, or a raw clone() into a pid
 * namespace of its own (no fork handler runs either way). */
static pid_t child_of(bool newpid)
{
	if (newpid)
		return (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL,
				      NULL, NULL);
	return _Fork();
}

static void test_fork(int forks, bool newpid)
{
	pthread_t t;

	/* A fuller table holds the lock longer: more children fork while
	 * the worker holds it. */
	for (int i = 0; i < 400; i++)
		placed();
	/* On one CPU: the main thread runs (and forks) when the scheduler
	 * takes the CPU from the worker, inside the lock as often as not. */
	pin(0);
	pthread_create(&t, NULL, remapper_cpu0, NULL);
	for (int i = 0; i < forks; i++) {
		pid_t c = child_of(newpid);
		int ms = 0;

		if (c == 0) {
			in_place(page3 + 8192);
			_exit(0);
		}
		if (c < 0) {
			check_fail(__FILE__, __LINE__, "%s: %s", newpid ?
				   "clone(CLONE_NEWPID)" : "_Fork", strerror(errno));
			return;
		}
		while (waitpid(c, NULL, WNOHANG) != c) {
			if (++ms == 5000) {
				kill(c, SIGKILL);
				waitpid(c, NULL, 0);
				check_fail(__FILE__, __LINE__, "fork: expected child %d of %d to return "
					   "from its first mremap, got it stuck for 5 s", i, forks);
				return;
			}
			usleep(1000);
		}
	}
	printf("fork: %d %s children mremapped while a thread took the table's lock\n",
	       forks, newpid ? "clone(CLONE_NEWPID)" : "_Fork");
}

static size_t resident(const char *p, size_t len)
{
	unsigned char v[4096];
	size_t n = 0;

	for (size_t off = 0; off < len; off += sizeof(v) * 4096) {
		size_t chunk = len - off < sizeof(v) * 4096 ? len - off : sizeof(v) * 4096;

		if (mincore((void *)(p + off), chunk, v))
			return (size_t)-1;
		for (size_t i = 0; i < chunk / 4096; i++)
			n += v[i] & 1;
	}
	return n;
}

/* The pages of [p, p+len) resident, and the KiB locked since `before`,
 * against what the kernel gives without the shim; a block (at_least) may
 * lock more than asked: its allocator's mapping may be bigger. */
static void check_pages(const char *what, const char *p, size_t len, long before,
			size_t want_pages, long want_kb, bool at_least)
{
	size_t got = resident(p, len);
	long kb = status_kib("VmLck") - before;

	CHECK(got == want_pages, "%s: expected %zu pages resident, got %zu", what, want_pages,
	      got);
	CHECK(at_least ? kb >= want_kb : kb == want_kb, "%s: expected %s%ld KiB more locked, got %ld",
	      what, at_least ? "at least " : "", want_kb, kb);
	printf("flags: %-28s %zu pages resident, %ld KiB locked\n", what, got, kb);
}

static void one_flags(const char *what, int prot, int flags, size_t want_pages, long want_kb)
{
	long before = status_kib("VmLck");
	char *p = mmap(NULL, BIG, prot,
		       ((flags & MAP_SHARED) ? 0 : MAP_PRIVATE) | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED) {
		check_fail(__FILE__, __LINE__, "%s: expected a mapping, got %s", what,
			   strerror(errno));
		return;
	}
	check_pages(what, p, BIG, before, want_pages, want_kb, false);
	munmap(p, BIG);
}

/* A block of BIG from malloc; its first and last pages may be shared, so
 * only the whole pages inside it are counted. */
static void one_malloc(const char *what, size_t want_pages, long want_kb)
{
	long before = status_kib("VmLck");
	char *p = malloc(BIG);

	if (p == NULL) {
		check_fail(__FILE__, __LINE__, "%s: expected a block, got %s", what,
			   strerror(errno));
		return;
	}
	check_pages(what, (char *)(((uintptr_t)p + 4095) & ~(uintptr_t)4095), BIG - 4096,
		    before, want_pages - 1, want_kb, true);
	free(p);
}

/* The kernel does not pass mlockall(MCL_FUTURE) on to a fork's child: its
 * mappings are neither locked nor faulted in. (Not a block: the child's
 * malloc may reuse the parent's freed extent, faulted in before the fork.) */
static void fork_child_unlocked(void)
{
	pid_t pid;
	int st;

	/* As pid 1 (run under unshare --pid --fork), the child is made pid 1
	 * of a namespace of its own: the same pid as its parent's. */
	if (getpid() == 1 && unshare(CLONE_NEWPID) == 0)
		printf("flags: the fork's child is pid 1 of a new pid namespace\n");
	pid = fork();
	if (pid == 0) {
		check_failures = 0;
		one_flags("plain, child of MCL_FUTURE", PROT_READ | PROT_WRITE, 0, 0, 0);
		_exit(check_failures ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "fork under MCL_FUTURE: expected the child's checks to pass");
}

/* A thread maps while another calls munlockall, under MCL_FUTURE: once
 * both are done, nothing may be locked (a mapping the shim made unlocked
 * and locked once placed stayed locked after the munlockall). */
static void *map_one(void *unused)
{
	char *p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void test_mcl_race(int rounds)
{
	int locked = 0;

	for (int i = 0; i < rounds; i++) {
		pthread_t t;
		void *p = NULL;

		if (mlockall(MCL_FUTURE) || pthread_create(&t, NULL, map_one, NULL)) {
			check_fail(__FILE__, __LINE__, "mlockall or pthread_create failed");
			return;
		}
		munlockall();
		pthread_join(t, &p);
		locked += status_kib("VmLck") != 0;
		if (p)
			munmap(p, 4 << 20);
	}
	CHECK(locked == 0, "mcl-race: expected nothing locked after munlockall, got memory "
	      "locked in %d of %d rounds", locked, rounds);
	printf("mcl-race: %d rounds, memory locked after munlockall in %d\n", rounds, locked);
}

/* Without CAP_IPC_LOCK (dropped from the effective set), over a 1 MiB
 * lock limit, the kernel refuses MAP_LOCKED before MAP_FIXED replaces
 * anything. */
static void test_fixed_locked(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	struct rlimit rl = { 1 << 20, 1 << 20 };
	unsigned char v;
	char *r, *c, line[256];
	FILE *f;
	int err;

	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].effective &= ~(1U << CAP_IPC_LOCK);
		syscall(SYS_capset, &h, d);
	}
	if (setrlimit(RLIMIT_MEMLOCK, &rl)) {
		check_fail(__FILE__, __LINE__, "setrlimit: %s", strerror(errno));
		return;
	}
	r = mmap(NULL, BIG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) {
		check_fail(__FILE__, __LINE__, "reservation: %s", strerror(errno));
		return;
	}
	c = mmap(r + (16 << 20), 8 << 20, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_LOCKED, -1, 0);
	err = errno;
	CHECK(c == MAP_FAILED && err == EAGAIN,
	      "fixed-locked: expected EAGAIN over the lock limit, got %s",
	      c == MAP_FAILED ? strerror(err) : "a mapping");
	CHECK(mincore(r + (16 << 20), 4096, &v) == 0,
	      "fixed-locked: the refused commit left a hole in the reservation");
	/* Still the reservation: one PROT_NONE mapping over all of it. */
	snprintf(line, sizeof(line), "%lx-%lx ---p", (unsigned long)r,
		 (unsigned long)(r + BIG));
	f = fopen("/proc/self/maps", "r");
	err = 1;
	for (char buf[512]; f && fgets(buf, sizeof(buf), f);)
		if (strncmp(buf, line, strlen(line)) == 0)
			err = 0;
	if (f)
		fclose(f);
	CHECK(err == 0, "fixed-locked: expected the reservation unchanged (%s)", line);
	printf("fixed-locked: %s, reservation %s\n", c == MAP_FAILED ? "refused" : "mapped",
	       err ? "changed" : "unchanged");
	munmap(r, BIG);
}

static void test_flags(void)
{
	size_t all = BIG / 4096;
	long kb = (long)(BIG >> 10);

	one_flags("MAP_POPULATE", PROT_READ | PROT_WRITE, MAP_POPULATE, all, 0);
	one_flags("MAP_POPULATE|MAP_NONBLOCK", PROT_READ | PROT_WRITE,
		  MAP_POPULATE | MAP_NONBLOCK, 0, 0);
	one_flags("MAP_LOCKED", PROT_READ | PROT_WRITE, MAP_LOCKED, all, kb);
	one_flags("PROT_NONE|MAP_LOCKED", PROT_NONE, MAP_LOCKED, 0, kb);
	if (mlockall(MCL_FUTURE | MCL_ONFAULT)) {
		check_fail(__FILE__, __LINE__, "mlockall(MCL_FUTURE|MCL_ONFAULT): %s",
			   strerror(errno));
		return;
	}
	one_flags("MAP_LOCKED, MCL_ONFAULT", PROT_READ | PROT_WRITE, MAP_LOCKED, 0, kb);
	one_flags("MAP_POPULATE, MCL_ONFAULT", PROT_READ | PROT_WRITE, MAP_POPULATE, 0, kb);
	/* Without MCL_ONFAULT the kernel faults every new mapping in: the
	 * shim makes it unlocked, places it and locks it. */
	if (mlockall(MCL_FUTURE)) {
		check_fail(__FILE__, __LINE__, "mlockall(MCL_FUTURE): %s", strerror(errno));
		return;
	}
	one_flags("plain, MCL_FUTURE", PROT_READ | PROT_WRITE, 0, all, kb);
	one_flags("MAP_POPULATE, MCL_FUTURE", PROT_READ | PROT_WRITE, MAP_POPULATE, all, kb);
	one_flags("PROT_NONE, MCL_FUTURE", PROT_NONE, 0, 0, kb);
	one_flags("shared read-only, MCL_FUTURE", PROT_READ, MAP_SHARED, all, kb);
	one_malloc("malloc, MCL_FUTURE", all, kb);
	fork_child_unlocked();
	munlockall();
	one_flags("plain, after munlockall", PROT_READ | PROT_WRITE, 0, 0, 0);
}

/* reserve: first map 64 MiB read-only, as the shim's tag map is, so that
 * a run without the shim says whether this process may lock that much
 * (RLIMIT_MEMLOCK counts the whole map: 8 MiB by default for a user). */
static void test_mcl_current(bool reserve)
{
	void *p[64];
	long rss;

	if (reserve && mmap(NULL, 64 << 20, PROT_READ,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
		printf("reserving 64 MiB: %s\n", strerror(errno));
		exit(3);
	}
	for (int i = 0; i < 64; i++)
		p[i] = malloc(100 + 100 * (size_t)i);
	if (mlockall(MCL_CURRENT)) {
		printf("mlockall(MCL_CURRENT): %s\n", strerror(errno));
		exit(3);
	}
	rss = status_kib("VmRSS");
	munlockall();
	printf("VmRSS under mlockall(MCL_CURRENT): %s\n",
	       rss > 0 && rss < 48 * 1024 ? "under 48 MiB" : "48 MiB or more");
	if (rss <= 0 || rss >= 48 * 1024)
		check_fail(__FILE__, __LINE__, "VmRSS %ld kB under mlockall(MCL_CURRENT)",
			   rss);
	for (int i = 0; i < 64; i++)
		free(p[i]);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	deadlock_guard(120);
	if (argc == 3 && strcmp(argv[1], "signal") == 0)
		test_signal(atoi(argv[2]));
	else if ((argc == 3 || argc == 4) && strcmp(argv[1], "fork") == 0)
		test_fork(atoi(argv[2]), argc == 4 && strcmp(argv[3], "newpid") == 0);
	else if (argc == 2 && strcmp(argv[1], "flags") == 0)
		test_flags();
	else if (argc == 2 && strcmp(argv[1], "fixed-locked") == 0)
		test_fixed_locked();
	else if (argc >= 2 && argc <= 3 && strcmp(argv[1], "mcl-current") == 0)
		test_mcl_current(argc == 3 && strcmp(argv[2], "reserve") == 0);
	else if (argc == 3 && strcmp(argv[1], "mcl-race") == 0)
		test_mcl_race(atoi(argv[2]));
	else {
		fprintf(stderr, "usage: %s signal SECS|fork N [newpid]|flags|fixed-locked|mcl-current [reserve]|mcl-race N\n",
			argv[0]);
		return 2;
	}
	CHECK_EXIT();
}
