/*
 * place_large: large buffers, mappings and thread placement in a
 * multi-node guest (the scenarios of the large-buffer issue).
 *
 *   place_large large   [--expect P0,P1,..] [--tolerance PTS]
 *       one thread mallocs 256 MiB and touches it: per-node shares
 *   place_large blocks  [--expect ...]
 *       one thread mallocs 32 blocks of 6 MiB and touches them: per-node
 *       shares of them all
 *   place_large shared  [--expect ...]
 *       a MAP_SHARED|MAP_ANONYMOUS 256 MiB mapping made before fork,
 *       touched by the child only: per-node shares seen by the parent
 *   place_large mixed   [--expect ...] [--min-local PCT]
 *       a thread on node 0 mallocs 256 MiB (shared data) and 16 MiB of
 *       small private blocks: the big buffer's shares and the private
 *       blocks' local %, side by side
 *   place_large keep
 *       a large mapping the program mbinds to the last node, and a large
 *       file mapping touched from node 0: both must keep the program's
 *       (or the kernel's default) placement, 100 %
 *   place_large populate|locked  [--expect ...]
 *       a 256 MiB anonymous mapping made with MAP_POPULATE (or
 *       MAP_LOCKED), never touched: the kernel faults its pages in inside
 *       mmap, so they show whether the placement came first
 *   place_large mlockall|mlockall-malloc|mlockall-shm  [--expect ...]
 *       after mlockall(MCL_CURRENT|MCL_FUTURE), a 256 MiB anonymous
 *       mapping (or malloc'd block, or shm segment), never touched: the
 *       kernel faults every new mapping in inside mmap (and shmat)
 *   place_large mremap
 *       a 256 MiB anonymous mapping, touched, grown to 512 MiB by mremap
 *       (MREMAP_MAYMOVE), its contents checked, the new half touched:
 *       fails (exit 1) when mremap does; the shares are printed
 *   place_large reserve  [--expect ...]
 *       a 256 MiB PROT_NONE reservation committed in 16 MiB pieces by
 *       mmap(MAP_FIXED) (a JVM's heap: -Xmx reserved, then committed),
 *       written by a thread on node 0: per-node shares
 *   place_large spread  [--threads N]
 *       N new threads (default 2 per node) report the node they run on
 *
 * --expect gives the expected share per node with memory, in percent
 * (default: equal); a share more than --tolerance points off (default 2)
 * fails. Without --expect/--min-local/--check nothing is asserted (the
 * baseline runs). Exit: 0 ok, 1 figure out of bounds, 2 could not measure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define BIG (256 * MiB)
#define MAXN 64

static struct {
	int nodes, last;
	double expect[MAXN];
	bool have_expect, check;
	double tolerance, min_local;
	int threads;
	long page;
	int mode;   /* --mode: the policy every 2 MiB of the buffer must have */
} o = { .tolerance = 2.0, .min_local = -1, .mode = -1 };

static void die(const char *what)
{
	fprintf(stderr, "place_large: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Pages of [p, p+len) per node, by move_pages (nodes == NULL: query). */
static size_t count_nodes(const void *p, size_t len, size_t per[MAXN])
{
	enum { BATCH = 4096 };
	void *pages[BATCH];
	int status[BATCH];
	size_t n = 0, unknown = 0;
	uintptr_t first = (uintptr_t)p & ~(uintptr_t)(o.page - 1);

	memset(per, 0, MAXN * sizeof(per[0]));
	len += (uintptr_t)p - first;
	for (size_t off = 0; off < len;) {
		unsigned long cnt = 0;

		for (; cnt < BATCH && off < len; cnt++, off += (size_t)o.page)
			pages[cnt] = (char *)first + off;
		if (move_pages(0, cnt, pages, NULL, status, 0))
			die("move_pages");
		for (unsigned long i = 0; i < cnt; i++) {
			/* A page the kernel is migrating right now (NUMA
			 * balancing) may not answer: count it as unknown. */
			if (status[i] < 0 || status[i] >= MAXN) {
				unknown++;
				continue;
			}
			per[status[i]]++;
			n++;
		}
	}
	if (unknown * 100 > n + unknown) {
		fprintf(stderr, "place_large: %zu of %zu pages did not answer "
			"move_pages: cannot measure\n", unknown, n + unknown);
		exit(2);
	}
	return n;
}

/* Prints "what: shares a/b/.." of n pages, per[] of them per node, and
 * checks them against --expect. */
static int check_shares(const char *what, const size_t per[MAXN], size_t n)
{
	int bad = 0, mem = 0;

	printf("%s: shares", what);
	for (int i = 0; i < o.nodes; i++)
		printf("%s%.1f", i ? "/" : " ", 100.0 * per[i] / n);
	printf(" %% (pages %zu)\n", n);
	if (!o.check)
		return 0;
	for (int i = 0; i < o.nodes; i++) {
		double want, got = 100.0 * per[i] / n;

		if (!numa_bitmask_isbitset(numa_get_mems_allowed(), i))
			continue;
		want = o.have_expect ? o.expect[mem] : -1;
		mem++;
		if (want < 0)
			continue;
		if (got < want - o.tolerance || got > want + o.tolerance) {
			printf("%s: node %d has %.1f %%, expected %.1f +- %.1f\n",
			       what, i, got, want, o.tolerance);
			bad = 1;
		}
	}
	return bad;
}

/* With --mode: the policy of every 2 MiB of [p, p+len) is o.mode (the
 * weighted runs of a strict plan are MPOL_BIND, of another PREFERRED). */
static int check_mode(const char *what, const char *p, size_t len)
{
	int bad = 0;

	if (o.mode < 0)
		return 0;
	for (size_t off = 0; off < len; off += 2 * MiB) {
		int mode = -1;

		if (get_mempolicy(&mode, NULL, 0, (void *)(p + off), MPOL_F_ADDR))
			die("get_mempolicy");
		/* The mode, without the flags in its high bits. */
		if ((mode & 0xff) != o.mode && bad++ == 0)
			printf("%s: policy %d at offset %zu MiB, expected %d\n",
			       what, mode & 0xff, off / MiB, o.mode);
	}
	if (bad == 0)
		printf("%s: policy %d on all %zu runs of 2 MiB\n", what, o.mode,
		       len / (2 * MiB));
	return bad != 0;
}

static int shares(const char *what, const void *p, size_t len)
{
	size_t per[MAXN], n = count_nodes(p, len, per);

	return check_shares(what, per, n) | check_mode(what, p, len);
}

static void run_on(int node)
{
	if (numa_run_on_node(node))
		die("numa_run_on_node");
	sched_yield();
}

static int scenario_large(void)
{
	char *p = malloc(BIG);

	if (p == NULL)
		die("malloc(256 MiB)");
	memset(p, 1, BIG);
	return shares("large", p, BIG);
}

/* Blocks just above NUMASHIM_INTERLEAVE_MIN (the test sets 4M): each is
 * shorter than a weighted cycle on 4 nodes, so only their sum can show the
 * weights. */
static int scenario_blocks(void)
{
	enum { COUNT = 32 };
	const size_t len = 6 * MiB;
	size_t per[MAXN] = { 0 }, one[MAXN], n = 0;
	char *b[COUNT];

	for (int i = 0; i < COUNT; i++) {
		if ((b[i] = malloc(len)) == NULL)
			die("malloc(6 MiB)");
		memset(b[i], 1, len);
	}
	for (int i = 0; i < COUNT; i++) {
		n += count_nodes(b[i], len, one);
		for (int k = 0; k < MAXN; k++)
			per[k] += one[k];
	}
	return check_shares("blocks", per, n);
}

static int scenario_shared(void)
{
	char *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;
	int st;

	if (p == MAP_FAILED)
		die("mmap");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		memset(p, 1, BIG);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("child");
	/* Map the child's pages into our page tables (a read allocates
	 * nothing: they exist), so move_pages can report them. */
	for (size_t off = 0; off < BIG; off += (size_t)o.page)
		(void)*(volatile char *)(p + off);
	return shares("shared", p, BIG);
}

/* A large private mapping and a large shared one, written by a thread on
 * node 0: under a plan of one node (bind:N, preferred:N, NUMASHIM_NODES=N)
 * they go where its heap goes, not where the first touch is. */
static int scenario_mapped(void)
{
	int flags[2] = { MAP_PRIVATE, MAP_SHARED }, bad = 0;

	run_on(0);
	for (int i = 0; i < 2; i++) {
		char *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE,
			       flags[i] | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			die("mmap");
		memset(p, 1, BIG);
		bad |= shares(i ? "mapped shared" : "mapped private", p, BIG);
		munmap(p, BIG);
	}
	return bad;
}

static int scenario_populate(int flag)
{
	char *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flag, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return shares(flag == MAP_LOCKED ? "locked" : "populate", p, BIG);
}

/* how: 'm' mmap, 'b' malloc, 's' a System V shm segment. */
static int scenario_mlockall(char how)
{
	const char *name = how == 'b' ? "mlockall-malloc" : how == 's' ? "mlockall-shm"
								     : "mlockall";
	char *p;
	int id;

	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		die("mlockall");
	if (how == 'b') {
		p = malloc(BIG);
	} else if (how == 's') {
		if ((id = shmget(IPC_PRIVATE, BIG, IPC_CREAT | 0600)) < 0)
			die("shmget");
		p = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL); /* gone with the last detach */
		if (p == (void *)-1)
			die("shmat");
	} else {
		p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	}
	if (p == NULL || p == MAP_FAILED)
		die(name);
	return shares(name, p, BIG);
}

static int scenario_mremap(void)
{
	char *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *q;

	if (p == MAP_FAILED)
		die("mmap");
	for (size_t off = 0; off < BIG; off += (size_t)o.page)
		p[off] = (char)(off / (size_t)o.page);
	q = mremap(p, BIG, 2 * BIG, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) {
		printf("mremap: growing 256 MiB to 512 MiB failed: %s\n",
		       strerror(errno));
		return 1;
	}
	for (size_t off = 0; off < BIG; off += (size_t)o.page)
		if (q[off] != (char)(off / (size_t)o.page)) {
			printf("mremap: byte %zu changed\n", off);
			return 1;
		}
	memset(q + BIG, 1, BIG);
	o.check = false; /* the shares are printed, not asserted */
	return shares("mremap", q, 2 * BIG);
}

/* The reservation is large; each commit is below the threshold, and
 * MAP_FIXED: the commits replace the reservation's VMAs, and its policy
 * with them, unless numashim places them as the reservation was. */
static int scenario_reserve(void)
{
	const size_t piece = 16 * MiB;
	char *p = mmap(NULL, BIG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED)
		die("mmap(PROT_NONE)");
	for (size_t off = 0; off < BIG; off += piece)
		if (mmap(p + off, piece, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p + off)
			die("mmap(MAP_FIXED)");
	run_on(0);
	memset(p, 1, BIG);
	return shares("reserve", p, BIG);
}

static int scenario_mixed(void)
{
	enum { BLOCKS = 16 * 1024 };
	static char *small[BLOCKS];
	size_t per[MAXN], n = 0, local = 0;
	char *big;
	int bad;

	run_on(0);
	big = malloc(BIG);
	if (big == NULL)
		die("malloc(256 MiB)");
	memset(big, 1, BIG);
	for (int i = 0; i < BLOCKS; i++) {
		size_t len = 16 + (size_t)(i * 37 % 2000);

		small[i] = malloc(len);
		if (small[i] == NULL)
			die("malloc");
		memset(small[i], 2, len);
	}
	bad = shares("mixed: big buffer", big, BIG);
	/* Private blocks: one page per block is enough to place them. */
	for (int i = 0; i < BLOCKS; i++) {
		void *pg = (void *)((uintptr_t)small[i] & ~(uintptr_t)(o.page - 1));
		int s;

		if (move_pages(0, 1, &pg, NULL, &s, 0) || s < 0)
			die("move_pages");
		n++;
		local += s == 0;
	}
	memset(per, 0, sizeof(per));
	printf("mixed: private blocks local %.1f %% (blocks %zu, node 0)\n",
	       100.0 * local / n, n);
	if (o.min_local >= 0 && 100.0 * local / n < o.min_local) {
		printf("mixed: private blocks below %.1f %% local\n", o.min_local);
		bad = 1;
	}
	return bad;
}

static int scenario_keep(void)
{
	unsigned long mask = 1UL << o.last;
	char path[256];
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	size_t per[MAXN], n;
	char *bound, *file;
	int fd, bad = 0;

	run_on(0);
	bound = mmap(NULL, BIG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bound == MAP_FAILED)
		die("mmap");
	if (mbind(bound, BIG, MPOL_BIND, &mask, MAXN + 1, 0))
		die("mbind");
	memset(bound, 1, BIG);
	n = count_nodes(bound, BIG, per);
	printf("keep: mbind(node %d) range: %.1f %% on node %d\n", o.last,
	       100.0 * per[o.last] / n, o.last);
	if (o.check && per[o.last] != n)
		bad = 1;

	snprintf(path, sizeof(path), "%s/place_large.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)(128 * MiB)))
		die(path);
	unlink(path);
	file = mmap(NULL, 128 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (file == MAP_FAILED)
		die("mmap file");
	memset(file, 1, 128 * MiB);
	n = count_nodes(file, 128 * MiB, per);
	printf("keep: file mapping touched from node 0: %.1f %% on node 0\n",
	       100.0 * per[0] / n);
	if (o.check && per[0] != n)
		bad = 1;
	return bad;
}

/* The node a thread is pinned to: the one node all CPUs of its affinity
 * belong to, or -1 when it may run anywhere. */
static void *where(void *out)
{
	cpu_set_t s;
	int node = -2;

	if (sched_getaffinity(0, sizeof(s), &s) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++) {
			int n;

			if (!CPU_ISSET(c, &s))
				continue;
			n = numa_node_of_cpu(c);
			node = node == -2 || node == n ? n : -1;
		}
	*(int *)out = node < 0 ? -1 : node;
	return NULL;
}

static int scenario_spread(void)
{
	pthread_t t[256];
	int node[256], count[MAXN] = { 0 }, cpu_nodes = 0, bad = 0;
	int free_threads = 0;
	int n = o.threads;

	for (int i = 0; i < o.nodes; i++) {
		struct bitmask *c = numa_allocate_cpumask();

		if (numa_node_to_cpus(i, c) == 0 && numa_bitmask_weight(c) > 0)
			cpu_nodes++;
		numa_free_cpumask(c);
	}
	if (n <= 0)
		n = 2 * cpu_nodes;
	if (n > 256)
		n = 256;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, where, &node[i]))
			die("pthread_create");
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (node[i] >= 0 && node[i] < MAXN)
			count[node[i]]++;
		else
			free_threads++;
	}
	printf("spread: %d threads pinned ->", n);
	for (int i = 0; i < o.nodes; i++)
		printf(" node %d: %d", i, count[i]);
	printf(", free to run anywhere: %d\n", free_threads);
	if (o.check)
		for (int i = 0; i < o.nodes; i++)
			if (count[i] != n / cpu_nodes)
				bad = 1;
	return bad;
}

static void parse_expect(const char *s)
{
	int i = 0;

	for (char *end; *s && i < MAXN; i++) {
		o.expect[i] = strtod(s, &end);
		if (end == s)
			break;
		s = *end == ',' ? end + 1 : end;
	}
	o.have_expect = true;
	o.check = true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "expect", required_argument, NULL, 'e' },
		{ "tolerance", required_argument, NULL, 't' },
		{ "min-local", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 'n' },
		{ "check", no_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sc;
	int c, mem = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': parse_expect(optarg); break;
		case 't': o.tolerance = atof(optarg); break;
		case 'm': o.min_local = atof(optarg); o.check = true; break;
		case 'n': o.threads = atoi(optarg); break;
		case 'c': o.check = true; break;
		case 'p':
			o.mode = strcmp(optarg, "bind") == 0 ? MPOL_BIND :
				 strcmp(optarg, "preferred") == 0 ? MPOL_PREFERRED :
				 strcmp(optarg, "interleave") == 0 ? MPOL_INTERLEAVE : -2;
			if (o.mode == -2)
				return 2;
			o.check = true;
			break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: place_large [options] "
			"large|blocks|shared|mixed|keep|spread|mapped|populate|locked|"
			"mlockall|mlockall-malloc|mlockall-shm|mremap|reserve\n");
		return 2;
	}
	sc = argv[optind];
	if (numa_available() < 0 || numa_max_node() < 1) {
		printf("%s: SKIP: needs 2 or more NUMA nodes\n", sc);
		return 77;
	}
	o.nodes = numa_max_node() + 1;
	o.last = o.nodes - 1;
	o.page = sysconf(_SC_PAGESIZE);
	/* Equal shares over the nodes with memory, unless told otherwise. */
	for (int i = 0; i < o.nodes; i++)
		mem += numa_bitmask_isbitset(numa_get_mems_allowed(), i);
	if (o.check && !o.have_expect) {
		for (int i = 0; i < mem; i++)
			o.expect[i] = 100.0 / mem;
		o.have_expect = true;
	}
	if (strcmp(sc, "large") == 0)
		return scenario_large();
	if (strcmp(sc, "shared") == 0)
		return scenario_shared();
	if (strcmp(sc, "blocks") == 0)
		return scenario_blocks();
	if (strcmp(sc, "mixed") == 0)
		return scenario_mixed();
	if (strcmp(sc, "keep") == 0)
		return scenario_keep();
	if (strcmp(sc, "spread") == 0)
		return scenario_spread();
	if (strcmp(sc, "mapped") == 0)
		return scenario_mapped();
	if (strcmp(sc, "populate") == 0)
		return scenario_populate(MAP_POPULATE);
	if (strcmp(sc, "locked") == 0)
		return scenario_populate(MAP_LOCKED);
	if (strcmp(sc, "mremap") == 0)
		return scenario_mremap();
	if (strcmp(sc, "reserve") == 0)
		return scenario_reserve();
	if (strcmp(sc, "mlockall") == 0)
		return scenario_mlockall('m');
	if (strcmp(sc, "mlockall-malloc") == 0)
		return scenario_mlockall('b');
	if (strcmp(sc, "mlockall-shm") == 0)
		return scenario_mlockall('s');
	fprintf(stderr, "place_large: unknown scenario %s\n", sc);
	return 2;
}
