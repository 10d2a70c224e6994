/*
 * numashim demo: the job numashim does, seen from an unmodified program.
 *
 * One worker per NUMA node builds a private table of small records (as a
 * service's per-thread caches or sessions would), then one worker moves to
 * another node, drops its table and builds a new one. The demo asks the
 * kernel (move_pages) where every page of every record ended up and prints
 * the share that is local to the worker's node.
 *
 * Run it plain and under the shim and compare:
 *   ./demo
 *   LD_PRELOAD=/path/to/libnumashim.so ./demo
 * On a one-node machine every page is local either way; run it in a
 * multi-node machine or guest (./dev demo does that in a QEMU guest).
 */
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORDS 20000

struct record {
	struct record *next;
	unsigned long key;
	char payload[];
};

struct worker {
	int node, move_to;
	pthread_t thread;
	struct record *head;
	double local_pct, moved_pct;
};

static long page_size;

static int run_on_node(int node)
{
	struct bitmask *cpus = numa_allocate_cpumask();
	int rc = numa_node_to_cpus(node, cpus);

	if (rc == 0)
		rc = numa_sched_setaffinity(0, cpus);
	numa_free_cpumask(cpus);
	return rc;
}

static struct record *build(unsigned seed)
{
	struct record *head = NULL;

	for (unsigned long i = 0; i < RECORDS; i++) {
		size_t len = 24 + (i * 7 + seed) % 200;
		struct record *r = malloc(sizeof(*r) + len);

		if (r == NULL) {
			perror("malloc");
			exit(1);
		}
		r->key = i;
		memset(r->payload, (int)i, len);
		r->next = head;
		head = r;
	}
	return head;
}

static void drop(struct record *r)
{
	while (r) {
		struct record *next = r->next;

		free(r);
		r = next;
	}
}

/* Share of the records' pages that sit on `node`, by move_pages(2). */
static double local_share(struct record *head, int node)
{
	size_t n = 0, cap = RECORDS, local = 0, known = 0;
	void **pages = malloc(cap * sizeof(*pages));
	int *status = malloc(cap * sizeof(*status));

	for (struct record *r = head; r && n < cap; r = r->next)
		pages[n++] = (void *)((uintptr_t)r & ~(uintptr_t)(page_size - 1));
	if (move_pages(0, n, pages, NULL, status, 0) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (status[i] < 0)
				continue;
			known++;
			local += status[i] == node;
		}
	}
	free(pages);
	free(status);
	return known ? 100.0 * (double)local / (double)known : 0.0;
}

static void *work(void *arg)
{
	struct worker *w = arg;

	if (run_on_node(w->node))
		return NULL;
	w->head = build((unsigned)w->node);
	w->local_pct = local_share(w->head, w->node);
	if (w->move_to >= 0 && run_on_node(w->move_to) == 0) {
		drop(w->head);
		w->head = build((unsigned)w->move_to + 17);
		w->moved_pct = local_share(w->head, w->move_to);
	}
	return NULL;
}

int main(void)
{
	int nodes, last;
	struct worker *w;
	const char *pre = getenv("LD_PRELOAD");

	page_size = sysconf(_SC_PAGESIZE);
	if (numa_available() < 0) {
		printf("demo: this kernel has no NUMA support\n");
		return 0;
	}
	nodes = numa_max_node() + 1;
	last = nodes - 1;
	w = calloc((size_t)nodes, sizeof(*w));
	printf("demo: %d NUMA node(s), allocator: %s\n", nodes,
	       pre && strstr(pre, "numashim") ? "numashim" :
	       pre && *pre ? pre : "glibc");
	for (int n = 0; n < nodes; n++) {
		struct bitmask *cpus = numa_allocate_cpumask();

		w[n].node = -1;
		if (numa_node_to_cpus(n, cpus) == 0 &&
		    numa_bitmask_weight(cpus) > 0) {
			w[n].node = n;
			w[n].move_to = n == 0 && nodes > 1 ? last : -1;
			pthread_create(&w[n].thread, NULL, work, &w[n]);
		}
		numa_free_cpumask(cpus);
	}
	for (int n = 0; n < nodes; n++)
		if (w[n].node >= 0)
			pthread_join(w[n].thread, NULL);
	printf("  %-34s %s\n", "worker", "records on its node");
	for (int n = 0; n < nodes; n++) {
		if (w[n].node < 0)
			continue;
		printf("  node %-2d builds its table         %6.1f %%\n", n,
		       w[n].local_pct);
		if (w[n].move_to >= 0)
			printf("  node %-2d -> node %-2d, rebuilds     %6.1f %%\n",
			       n, w[n].move_to, w[n].moved_pct);
	}
	return 0;
}
