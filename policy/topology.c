/*
 * Topology helpers: distances, nearest node, and the emulated topology used
 * to exercise (and time) the multi-node path on a one-node host.
 * Reading the real topology from sysfs is the OS seam's job (shim/os.c).
 */
#include "policy/policy.h"

#include <errno.h>
#include <string.h>

void policy_topology_single(struct policy_topology *t, int cpus)
{
	memset(t, 0, sizeof(*t));
	if (cpus < 1)
		cpus = 1;
	if (cpus > POLICY_MAX_CPUS)
		cpus = POLICY_MAX_CPUS;
	t->nr_nodes = 1;
	t->online = t->has_memory = t->allowed = policy_node_bit(0);
	t->distance[0][0] = 10;
	t->nr_cpus = cpus;
	for (int c = 0; c < POLICY_MAX_CPUS; c++)
		t->cpu_node[c] = c < cpus ? 0 : -1;
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		t->mem_node[n] = (int16_t)n;
}

int policy_distance(const struct policy_topology *t, int a, int b)
{
	if (a < 0 || b < 0 || a >= POLICY_MAX_NODES || b >= POLICY_MAX_NODES)
		return 255;
	if (t->distance[a][b])
		return t->distance[a][b];
	/* No SLIT (or a node we could not read): the kernel's defaults. */
	return a == b ? 10 : 20;
}

int policy_nearest(const struct policy_topology *t, int from,
		   policy_nodemask_t candidates)
{
	int best = -1, best_d = 0;

	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		int d;

		if (!(candidates & t->has_memory & policy_node_bit(n)))
			continue;
		d = from < 0 ? 0 : policy_distance(t, from, n);
		if (best < 0 || d < best_d) {
			best = n;
			best_d = d;
		}
	}
	return best;
}

int policy_topology_fake(struct policy_topology *t, int n)
{
	int cpus[POLICY_MAX_CPUS], ncpu = 0, real_mem[POLICY_MAX_NODES], nreal = 0;

	if (n < 1 || n > POLICY_MAX_NODES)
		return -EINVAL;
	for (int c = 0; c < t->nr_cpus && c < POLICY_MAX_CPUS; c++)
		if (t->cpu_node[c] >= 0)
			cpus[ncpu++] = c;
	if (n > ncpu)
		return -EINVAL;
	/* Only real nodes this process may use can back a virtual node. */
	for (int r = 0; r < POLICY_MAX_NODES; r++)
		if (t->has_memory & t->allowed & policy_node_bit(r))
			real_mem[nreal++] = r;
	if (nreal == 0)
		real_mem[nreal++] = 0;

	for (int c = 0; c < POLICY_MAX_CPUS; c++)
		t->cpu_node[c] = -1;
	/* Even split in id order: CPU i of ncpu goes to node i*n/ncpu. */
	for (int i = 0; i < ncpu; i++)
		t->cpu_node[cpus[i]] = (int16_t)((long)i * n / ncpu);
	memset(t->distance, 0, sizeof(t->distance));
	for (int a = 0; a < n; a++) {
		for (int b = 0; b < n; b++)
			t->distance[a][b] = a == b ? 10 : 20;
		t->mem_node[a] = (int16_t)real_mem[a % nreal];
	}
	t->nr_nodes = n;
	t->online = t->has_memory = t->allowed =
		n == POLICY_MAX_NODES ? ~(policy_nodemask_t)0
				      : policy_node_bit(n) - 1;
	t->fake = n;
	return 0;
}
