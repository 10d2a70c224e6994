/* place: shared pieces of the tests/vm placement programs.
 *
 * Each place_* program runs one allocation scenario with plain pthreads,
 * then asks the kernel (move_pages with nodes == NULL) which node every page
 * of its own blocks is on, and prints one line such as
 *   pinned: local 99.8% (pages 2048) node shares 50.1/49.9
 * "local" means: on the target node of the thread that allocated -- its own
 * node, or, when that node has no usable memory (memory-less node, or
 * excluded by cpuset.mems), the nearest node that has.
 *
 * Exit status: 0 ok; 1 below --min-local or past --max-skew; 2 could not
 * measure (move_pages
 * failed, untouched pages, pages on a node the task may not use);
 * 77 the machine lacks the nodes the scenario needs.
 */
#ifndef NUMASHIM_TESTS_VM_PLACE_H
#define NUMASHIM_TESTS_VM_PLACE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define PLACE_MAX_NODES 64

struct place_opts {
	double min_local;  /* percent; < 0 = report only */
	double max_skew;   /* points a node's share may be off an even split; < 0 = any */
	size_t bytes;      /* per allocating thread and phase */
	int threads;       /* allocating threads per node (churn, pinned) */
	unsigned seed;
	int settle_ms;     /* keep re-touching the blocks this long before measuring */
	bool verbose;
};

/* A thread's blocks: what it allocated, so it can touch, measure, free. */
struct place_blocks {
	void **ptr;
	size_t *size;
	size_t n, cap;
};

/* Pages counted per node, and how many of them were on the target node. */
struct place_count {
	size_t pages, local, errors, forbidden;
	size_t on_node[PLACE_MAX_NODES];
};

/* Parses the common options; prints usage and exits on bad ones. */
void place_init(int argc, char **argv, const char *scenario, const char *about,
		struct place_opts *o);

/* Topology, restricted to what this task may use (affinity, mems_allowed). */
int place_num_nodes(void);            /* configured nodes */
bool place_node_has_cpus(int node);
int place_target_node(int node);      /* node itself or nearest with memory; -1 none */
int place_cpu_nodes(int *nodes);      /* nodes with usable CPUs, ascending */
/* The first and the last node with usable CPUs, for the scenarios that
 * move work from one node to another; skips (exit 77) with fewer than two. */
void place_two_nodes(int *first, int *last);

/* Affinity: a pthread attr that starts a thread on the node, and a move of
 * the calling thread (waits until it really runs there). */
void place_attr_on_node(pthread_attr_t *attr, int node);
void place_move_to_node(int node);
int place_current_node(void);

/* Blocks of 16..8192 bytes (log-uniform) until `bytes`; every byte written. */
void place_alloc(struct place_blocks *b, size_t bytes, unsigned *seed);
void place_touch(const struct place_blocks *b, int settle_ms);
void place_free(struct place_blocks *b);
void *place_alloc_one(unsigned *seed, size_t *size);

/* Adds the nodes of b's pages to c, `target` being the expected node. */
void place_measure(const struct place_blocks *b, int target, struct place_count *c);
void place_count_add(struct place_count *sum, const struct place_count *c);

/* Prints the figure line (+ `where`, e.g. "node 1") and returns the exit
 * status for it under o->min_local and o->max_skew. */
int place_report(const char *scenario, const char *where,
		 const struct place_count *c, const struct place_opts *o);

/* Prints "SCENARIO: SKIP: why" and exits 77. */
void place_skip(const char *scenario, const char *why) __attribute__((noreturn));
void place_die(const char *scenario, const char *what) __attribute__((noreturn));

#endif
