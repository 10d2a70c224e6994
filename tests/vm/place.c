/* place: topology, allocation, measurement and reporting shared by the
 * tests/vm placement programs (see place.h). Not linked into the shim: this
 * is ordinary application code, so it may use libnuma and stdio freely. */
#include "tests/vm/place.h"

#include <errno.h>
#include <getopt.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Everything learnt once at start-up; read-only afterwards, so threads
 * share it without locks. */
static struct {
	const char *scenario;
	int nnodes;
	size_t page;
	cpu_set_t cpus[PLACE_MAX_NODES];   /* node's CPUs we may run on */
	bool has_cpus[PLACE_MAX_NODES];
	bool has_mem[PLACE_MAX_NODES];     /* present and in mems_allowed */
	int target[PLACE_MAX_NODES];
} topo;

void place_die(const char *scenario, const char *what)
{
	fprintf(stderr, "%s: %s\n", scenario, what);
	exit(2);
}

void place_skip(const char *scenario, const char *why)
{
	printf("%s: SKIP: %s\n", scenario, why);
	exit(77);
}

static void usage(const char *about, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: place_%s [--min-local PCT] [--max-skew PCT] [--mib N] [--threads N]\n"
		"       [--seed N] [--settle MS] [-v]\n%s\n"
		"  --min-local PCT  exit 1 when fewer than PCT %% of the pages are local\n"
		"  --max-skew PCT   exit 1 when a node with memory holds a share of the\n"
		"                   pages more than PCT points off an even split\n"
		"  --mib N          MiB allocated per thread and phase (default 4)\n"
		"  --threads N      allocating threads per node (default 1)\n"
		"  --settle MS      keep re-writing the blocks MS ms before measuring,\n"
		"                   so kernel NUMA balancing gets a chance to act\n",
		topo.scenario, about);
	exit(status);
}

/* Nearest node (SLIT distance, then lowest id) whose memory we may use. */
static int nearest_with_memory(int node)
{
	int best = -1, bestd = 0;

	for (int m = 0; m < topo.nnodes; m++) {
		if (!topo.has_mem[m])
			continue;
		int d = m == node ? 0 : numa_distance(node, m);
		if (best < 0 || d < bestd)
			best = m, bestd = d;
	}
	return best;
}

static void learn_topology(void)
{
	cpu_set_t allowed;
	struct bitmask *mems, *cpus;

	if (numa_available() < 0)
		place_skip(topo.scenario, "no NUMA support in this kernel (numa_available < 0)");
	/* Not numa_num_configured_nodes(): it counts nodes with memory only,
	 * and a CPU-only node is exactly what some topologies test. */
	topo.nnodes = numa_max_node() + 1;
	if (topo.nnodes > PLACE_MAX_NODES)
		topo.nnodes = PLACE_MAX_NODES;
	topo.page = (size_t)sysconf(_SC_PAGESIZE);
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		place_die(topo.scenario, "sched_getaffinity failed");
	mems = numa_get_mems_allowed();
	cpus = numa_allocate_cpumask();
	for (int n = 0; n < topo.nnodes; n++) {
		CPU_ZERO(&topo.cpus[n]);
		if (numa_node_to_cpus(n, cpus) == 0)
			for (unsigned c = 0; c < cpus->size && c < CPU_SETSIZE; c++)
				if (numa_bitmask_isbitset(cpus, c) && CPU_ISSET(c, &allowed))
					CPU_SET(c, &topo.cpus[n]);
		topo.has_cpus[n] = CPU_COUNT(&topo.cpus[n]) > 0;
		topo.has_mem[n] = numa_bitmask_isbitset(mems, n) &&
				  numa_node_size64(n, NULL) > 0;
	}
	for (int n = 0; n < topo.nnodes; n++)
		topo.target[n] = nearest_with_memory(n);
	numa_free_cpumask(cpus);
	numa_free_nodemask(mems);
}

void place_init(int argc, char **argv, const char *scenario, const char *about,
		struct place_opts *o)
{
	static const struct option longopts[] = {
		{"min-local", required_argument, NULL, 'm'},
		{"max-skew", required_argument, NULL, 'k'},
		{"mib", required_argument, NULL, 'b'},
		{"threads", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 's'},
		{"settle", required_argument, NULL, 'S'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, li = 0;
	char *end;

	/* Write every page of `topo` before the flag stores in
	 * learn_topology: QEMU 7.2's TCG restores stale flags when a SETcc
	 * whose memory operand page-faults follows a TEST (has_cpus came out
	 * false on the first, faulting store). See tests/vm/README.md. */
	memset(&topo, 0, sizeof(topo));
	topo.scenario = scenario;
	*o = (struct place_opts){.min_local = -1, .max_skew = -1, .bytes = 4 << 20, .threads = 1, .seed = 1};
	while ((c = getopt_long(argc, argv, "vh", longopts, &li)) != -1) {
		errno = 0;
		switch (c) {
		case 'm': o->min_local = strtod(optarg, &end); break;
		case 'k': o->max_skew = strtod(optarg, &end); break;
		case 'b': o->bytes = strtoul(optarg, &end, 10) << 20; break;
		case 't': o->threads = (int)strtol(optarg, &end, 10); break;
		case 's': o->seed = (unsigned)strtoul(optarg, &end, 10); break;
		case 'S': o->settle_ms = (int)strtol(optarg, &end, 10); break;
		case 'v': o->verbose = true; continue;
		case 'h': usage(about, 0); break;
		default: usage(about, 2);
		}
		if (errno || *end || end == optarg) {
			fprintf(stderr, "%s: --%s '%s': not a number\n", scenario,
				longopts[li].name, optarg);
			exit(2);
		}
	}
	if (optind < argc || o->threads < 1 || o->threads > 64 || o->bytes == 0)
		usage(about, 2);
	if (o->seed == 0)
		o->seed = 1;   /* xorshift must not start at 0 */
	learn_topology();
}

int place_num_nodes(void) { return topo.nnodes; }
bool place_node_has_cpus(int node) { return topo.has_cpus[node]; }
int place_target_node(int node) { return topo.target[node]; }

int place_cpu_nodes(int *nodes)
{
	int k = 0;

	for (int n = 0; n < topo.nnodes; n++)
		if (topo.has_cpus[n] && topo.target[n] >= 0)
			nodes[k++] = n;
	return k;
}

void place_two_nodes(int *first, int *last)
{
	int nodes[PLACE_MAX_NODES], nn = place_cpu_nodes(nodes);

	if (nn < 2)
		place_skip(topo.scenario, "needs two nodes with usable CPUs");
	*first = nodes[0];
	*last = nodes[nn - 1];
}

int place_current_node(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? -1 : numa_node_of_cpu(cpu);
}

void place_attr_on_node(pthread_attr_t *attr, int node)
{
	pthread_attr_init(attr);
	if (pthread_attr_setaffinity_np(attr, sizeof(cpu_set_t), &topo.cpus[node]))
		place_die(topo.scenario, "pthread_attr_setaffinity_np failed");
}

void place_move_to_node(int node)
{
	if (sched_setaffinity(0, sizeof(cpu_set_t), &topo.cpus[node]))
		place_die(topo.scenario, "sched_setaffinity failed");
	/* The kernel migrates us before returning; check rather than trust. */
	for (int i = 0; place_current_node() != node; i++) {
		if (i > 10000)
			place_die(topo.scenario, "thread did not move to its node");
		sched_yield();
	}
}

/* xorshift32: deterministic sizes per seed, so runs are comparable. */
static unsigned next_rand(unsigned *s)
{
	unsigned x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* 16..8192 bytes, log-uniform over the ten power-of-two classes, so small
 * and page-sized blocks both occur (as in real heaps). */
static size_t next_size(unsigned *seed)
{
	unsigned r = next_rand(seed);
	size_t hi = (size_t)16 << (r % 10), lo = hi / 2 < 16 ? 16 : hi / 2;

	return lo + (r >> 8) % (hi - lo + 1);
}

void *place_alloc_one(unsigned *seed, size_t *size)
{
	void *p;

	*size = next_size(seed);
	p = malloc(*size);
	if (!p)
		place_die(topo.scenario, "malloc failed");
	memset(p, 0xa5, *size);   /* first touch happens here, as in real code */
	return p;
}

void place_alloc(struct place_blocks *b, size_t bytes, unsigned *seed)
{
	size_t done = 0;

	while (done < bytes) {
		if (b->n == b->cap) {
			b->cap = b->cap ? 2 * b->cap : 1024;
			b->ptr = realloc(b->ptr, b->cap * sizeof(*b->ptr));
			b->size = realloc(b->size, b->cap * sizeof(*b->size));
			if (!b->ptr || !b->size)
				place_die(topo.scenario, "out of memory for block lists");
		}
		b->ptr[b->n] = place_alloc_one(seed, &b->size[b->n]);
		done += b->size[b->n++];
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void place_touch(const struct place_blocks *b, int settle_ms)
{
	double end = now_ms() + settle_ms;

	do {
		for (size_t i = 0; i < b->n; i++)
			memset(b->ptr[i], 0x5a, b->size[i]);
	} while (now_ms() < end);
}

void place_free(struct place_blocks *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->ptr[i]);
	free(b->ptr);
	free(b->size);
	*b = (struct place_blocks){0};
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

/* move_pages(nodes = NULL) reports each page's node. With NUMA balancing
 * on, the kernel's scanner may just have made a page PROT_NONE to catch the
 * next access (a hinting fault); the query then says -EFAULT/-ENOENT for a
 * page we did write. Reading such a page takes the hinting fault (the
 * kernel may migrate it then: that is balancing at work) and makes it
 * answer; retry a few times before calling it an error. */
static void query_nodes(void **pages, unsigned long cnt, int *status)
{
	for (int attempt = 0;; attempt++) {
		bool missing = false;

		if (move_pages(0, cnt, pages, NULL, status, 0) < 0) {
			char msg[128];

			snprintf(msg, sizeof(msg), "move_pages failed: %s (seccomp?)",
				 strerror(errno));
			place_die(topo.scenario, msg);
		}
		for (unsigned long j = 0; j < cnt; j++)
			if (status[j] < 0) {
				missing = true;
				(void)*(volatile char *)pages[j];
			}
		if (!missing || attempt == 3)
			return;
	}
}

void place_measure(const struct place_blocks *b, int target, struct place_count *c)
{
	size_t n = 0, cap = 0, k;
	void **pages = NULL;
	int *status;
	enum { CHUNK = 1024 };

	/* Every page a block covers, each page once. */
	for (size_t i = 0; i < b->n; i++) {
		uintptr_t p = (uintptr_t)b->ptr[i] & ~(topo.page - 1);
		uintptr_t last = ((uintptr_t)b->ptr[i] + b->size[i] - 1) & ~(topo.page - 1);

		for (; p <= last; p += topo.page) {
			if (n == cap) {
				cap = cap ? 2 * cap : 4096;
				pages = realloc(pages, cap * sizeof(*pages));
				if (!pages)
					place_die(topo.scenario, "out of memory for page list");
			}
			pages[n++] = (void *)p;
		}
	}
	qsort(pages, n, sizeof(*pages), cmp_ptr);
	for (size_t i = k = 0; i < n; i++)
		if (k == 0 || pages[k - 1] != pages[i])
			pages[k++] = pages[i];
	status = malloc(CHUNK * sizeof(*status));
	if (!status)
		place_die(topo.scenario, "out of memory for page status");
	for (size_t i = 0; i < k; i += CHUNK) {
		unsigned long cnt = k - i < CHUNK ? k - i : CHUNK;

		query_nodes(pages + i, cnt, status);
		for (unsigned long j = 0; j < cnt; j++) {
			int node = status[j];

			c->pages++;
			if (node < 0 || node >= topo.nnodes) {
				c->errors++;     /* still not present though we wrote it */
				continue;
			}
			c->on_node[node]++;
			if (!topo.has_mem[node])
				c->forbidden++;
			if (node == target)
				c->local++;
		}
	}
	free(status);
	free(pages);
}

void place_count_add(struct place_count *sum, const struct place_count *c)
{
	sum->pages += c->pages;
	sum->local += c->local;
	sum->errors += c->errors;
	sum->forbidden += c->forbidden;
	for (int n = 0; n < PLACE_MAX_NODES; n++)
		sum->on_node[n] += c->on_node[n];
}

/* An interleaving allocator should give every node with memory an equal
 * share; true (and a FAIL line) when one is more than `max` points off. */
static bool skewed(const struct place_count *c, double max, const char *scenario)
{
	int nmem = 0;
	bool bad = false;

	for (int n = 0; n < topo.nnodes; n++)
		nmem += topo.has_mem[n];
	for (int n = 0; n < topo.nnodes; n++) {
		double share = 100.0 * c->on_node[n] / c->pages;
		double even = topo.has_mem[n] ? 100.0 / nmem : 0;

		if (share > even + max || share < even - max) {
			printf("%s: FAIL: node %d holds %.1f%% of the pages, "
			       "not %.1f%% +- %.1f\n", scenario, n, share, even, max);
			bad = true;
		}
	}
	return bad;
}

int place_report(const char *scenario, const char *where,
		 const struct place_count *c, const struct place_opts *o)
{
	double pct = c->pages ? 100.0 * c->local / c->pages : 0;
	char shares[PLACE_MAX_NODES * 8] = "", *s = shares;

	for (int n = 0; n < topo.nnodes; n++)
		s += snprintf(s, shares + sizeof(shares) - s, "%s%.1f", n ? "/" : "",
			      c->pages ? 100.0 * c->on_node[n] / c->pages : 0);
	printf("%s: local %.1f%% (pages %zu%s%s) node shares %s\n", scenario, pct,
	       c->pages, where && *where ? ", " : "", where ? where : "", shares);
	if (c->pages == 0 || c->errors || c->forbidden) {
		printf("%s: ERROR: %zu pages not present, %zu on nodes without usable memory\n",
		       scenario, c->errors, c->forbidden);
		return 2;
	}
	if (o->min_local >= 0 && pct < o->min_local) {
		printf("%s: FAIL: local %.2f%% < %.1f%% required\n", scenario, pct,
		       o->min_local);
		return 1;
	}
	if (o->max_skew >= 0 && skewed(c, o->max_skew, scenario))
		return 1;
	fflush(stdout);
	return 0;
}
