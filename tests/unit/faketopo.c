#include "tests/unit/faketopo.h"

#include <string.h>

void faketopo_empty(struct policy_topology *t)
{
	memset(t, 0, sizeof(*t));
	for (int c = 0; c < POLICY_MAX_CPUS; c++)
		t->cpu_node[c] = -1;
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		t->mem_node[n] = (int16_t)n;
}

void faketopo_add_node(struct policy_topology *t, int node, int lo, int hi,
		       bool memory)
{
	t->online |= policy_node_bit(node);
	t->allowed |= policy_node_bit(node);
	if (memory)
		t->has_memory |= policy_node_bit(node);
	if (node + 1 > t->nr_nodes)
		t->nr_nodes = node + 1;
	t->distance[node][node] = 10;
	for (int c = lo; c <= hi; c++) {
		t->cpu_node[c] = (int16_t)node;
		if (c + 1 > t->nr_cpus)
			t->nr_cpus = c + 1;
	}
}

void faketopo_set_distance(struct policy_topology *t, int a, int b, int d)
{
	t->distance[a][b] = (uint8_t)d;
	t->distance[b][a] = (uint8_t)d;
}

void faketopo_single(struct policy_topology *t)
{
	faketopo_empty(t);
	faketopo_add_node(t, 0, 0, 3, true);
}

void faketopo_two(struct policy_topology *t)
{
	faketopo_empty(t);
	faketopo_add_node(t, 0, 0, 3, true);
	faketopo_add_node(t, 1, 4, 7, true);
	faketopo_set_distance(t, 0, 1, 20);
}

void faketopo_four(struct policy_topology *t)
{
	faketopo_empty(t);
	for (int n = 0; n < 4; n++)
		faketopo_add_node(t, n, 4 * n, 4 * n + 3, true);
	for (int a = 0; a < 4; a++)
		for (int b = a + 1; b < 4; b++)
			faketopo_set_distance(t, a, b, a / 2 == b / 2 ? 20 : 30);
}

void faketopo_eight(struct policy_topology *t)
{
	faketopo_empty(t);
	for (int n = 0; n < 8; n++)
		faketopo_add_node(t, n, 2 * n, 2 * n + 1, true);
	/* No SLIT: policy_distance falls back to 10 local, 20 remote. */
	memset(t->distance, 0, sizeof(t->distance));
}

void faketopo_memoryless(struct policy_topology *t)
{
	faketopo_empty(t);
	faketopo_add_node(t, 0, 0, 1, true);
	faketopo_add_node(t, 1, 2, 3, true);
	faketopo_add_node(t, 2, 4, 5, false);
	faketopo_set_distance(t, 0, 1, 20);
	faketopo_set_distance(t, 0, 2, 30);
	faketopo_set_distance(t, 1, 2, 20);
}

void faketopo_memonly(struct policy_topology *t)
{
	faketopo_empty(t);
	faketopo_add_node(t, 0, 0, 3, true);
	faketopo_add_node(t, 1, 4, 7, true);
	faketopo_add_node(t, 2, 0, -1, true);
	faketopo_set_distance(t, 0, 1, 20);
	faketopo_set_distance(t, 0, 2, 30);
	faketopo_set_distance(t, 1, 2, 30);
}

void faketopo_cpuset(struct policy_topology *t)
{
	faketopo_four(t);
	t->allowed &= ~policy_node_bit(3);
}

int faketopo_cpu_count(const struct policy_topology *t)
{
	int n = 0;

	for (int c = 0; c < t->nr_cpus && c < POLICY_MAX_CPUS; c++)
		if (t->cpu_node[c] >= 0)
			n++;
	return n;
}
