/*
 * Fake machines for the policy tests: struct policy_topology values built
 * by hand, so node choice can be checked on 2/4/8-node, memoryless and
 * cpuset-restricted machines from a one-node build host.
 *
 * Layouts (CPU ids are contiguous per node, in node order):
 *   single      1 node,  CPUs 0-3
 *   two         2 nodes, CPUs 0-3 | 4-7, SLIT 10/20
 *   four        4 nodes, 4 CPUs each; SLIT 0-1 and 2-3 at 20, the rest 30
 *   eight       8 nodes, 2 CPUs each; no SLIT (all distances unknown)
 *   memoryless  3 nodes, 2 CPUs each; node 2 has CPUs but no memory and
 *               is nearer node 1 (20) than node 0 (30)
 *   memonly     3 nodes: 0 and 1 with 4 CPUs each, node 2 memory only
 *               (no CPUs, like CXL/HBM), 30 from both
 *   cpuset      the `four` machine with node 3 outside the allowed mems
 */
#ifndef NUMASHIM_TESTS_UNIT_FAKETOPO_H
#define NUMASHIM_TESTS_UNIT_FAKETOPO_H

#include "policy/policy.h"

#include <stdbool.h>

/* An empty machine: no nodes, no CPUs, identity mem_node. */
void faketopo_empty(struct policy_topology *t);
/* Adds node `node` with CPUs lo..hi (none when hi < lo); it is online and
 * allowed, and has memory when `memory`. */
void faketopo_add_node(struct policy_topology *t, int node, int lo, int hi,
		       bool memory);
/* Sets the SLIT distance a<->b (both directions). */
void faketopo_set_distance(struct policy_topology *t, int a, int b, int d);

void faketopo_single(struct policy_topology *t);
void faketopo_two(struct policy_topology *t);
void faketopo_four(struct policy_topology *t);
void faketopo_eight(struct policy_topology *t);
void faketopo_memoryless(struct policy_topology *t);
void faketopo_memonly(struct policy_topology *t);
void faketopo_cpuset(struct policy_topology *t);

/* Number of CPUs present (cpu_node >= 0) below nr_cpus. */
int faketopo_cpu_count(const struct policy_topology *t);

#endif
