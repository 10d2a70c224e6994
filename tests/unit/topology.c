/*
 * policy/topology.c: distances, nearest node, the one-node fallback and the
 * emulated (NUMASHIM_FAKE_NODES) topology.
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <string.h>

#define ALL (~(policy_nodemask_t)0)

/* ------------------------------------------------------ policy_distance */

static void distance_reads_the_slit(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	assert_int_equal(policy_distance(&t, 1, 1), 10);
	assert_int_equal(policy_distance(&t, 0, 1), 20);
	assert_int_equal(policy_distance(&t, 3, 2), 20);
	assert_int_equal(policy_distance(&t, 0, 2), 30);
	assert_int_equal(policy_distance(&t, 3, 1), 30);
}

static void distance_unknown_is_10_local_20_remote(void **state)
{
	struct policy_topology t;

	faketopo_eight(&t);
	assert_int_equal(policy_distance(&t, 3, 3), 10);
	assert_int_equal(policy_distance(&t, 0, 7), 20);
	assert_int_equal(policy_distance(&t, 6, 2), 20);
}

static void distance_of_invalid_node_is_255(void **state)
{
	struct policy_topology t;

	faketopo_two(&t);
	assert_int_equal(policy_distance(&t, -1, 0), 255);
	assert_int_equal(policy_distance(&t, 0, -1), 255);
	assert_int_equal(policy_distance(&t, 64, 0), 255);
	assert_int_equal(policy_distance(&t, 0, 64), 255);
}

/* ------------------------------------------------------ policy_nearest */

static void nearest_is_the_node_itself_when_a_candidate(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	for (int n = 0; n < 4; n++)
		assert_int_equal(policy_nearest(&t, n, t.online), n);
}

static void nearest_picks_the_smallest_distance(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	assert_int_equal(policy_nearest(&t, 0, NODES(1, 2, 3)), 1);
	assert_int_equal(policy_nearest(&t, 3, NODES(0, 1, 2)), 2);
	assert_int_equal(policy_nearest(&t, 2, NODES(0, 3)), 3);
}

static void nearest_tie_picks_the_lowest_id(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	assert_int_equal(policy_nearest(&t, 0, NODES(2, 3)), 2);
	assert_int_equal(policy_nearest(&t, 3, NODES(1, 0)), 0);
	faketopo_eight(&t);
	assert_int_equal(policy_nearest(&t, 5, NODES(7, 3, 1)), 1);
}

/* Node 2 has CPUs but no memory; node 1 (20) is nearer than node 0 (30). */
static void nearest_from_memoryless_node_is_nearest_memory_node(void **state)
{
	struct policy_topology t;

	faketopo_memoryless(&t);
	assert_int_equal(policy_nearest(&t, 2, t.has_memory), 1);
	/* The contract: "the node *with memory* in candidates". */
	assert_int_equal(policy_nearest(&t, 2, t.online), 1);
}

static void nearest_of_no_candidates_is_minus_one(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	assert_int_equal(policy_nearest(&t, 0, 0), -1);
}

static void nearest_from_unknown_node_is_the_lowest_candidate(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	assert_int_equal(policy_nearest(&t, -1, NODES(3, 2)), 2);
}

/* ------------------------------------------------------ policy_topology_single */

static void single_has_one_node_with_every_cpu(void **state)
{
	struct policy_topology t;

	memset(&t, 0x5a, sizeof(t));
	policy_topology_single(&t, 6);
	assert_int_equal(t.nr_nodes, 1);
	assert_int_equal(t.online, 1);
	assert_int_equal(t.has_memory, 1);
	assert_int_equal(t.allowed, 1);
	assert_int_equal(t.nr_cpus, 6);
	for (int c = 0; c < 6; c++)
		assert_int_equal(t.cpu_node[c], 0);
	for (int c = 6; c < POLICY_MAX_CPUS; c++)
		assert_int_equal(t.cpu_node[c], -1);
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		assert_int_equal(t.mem_node[n], n);
	assert_int_equal(t.fake, 0);
	assert_int_equal(policy_distance(&t, 0, 0), 10);
}

static void single_clamps_the_cpu_count(void **state)
{
	struct policy_topology t;

	policy_topology_single(&t, 0);
	assert_int_equal(t.nr_cpus, 1);
	policy_topology_single(&t, 5000);
	assert_int_equal(t.nr_cpus, POLICY_MAX_CPUS);
	assert_int_equal(t.cpu_node[POLICY_MAX_CPUS - 1], 0);
}

/* ------------------------------------------------------ policy_topology_fake */

static void fake_splits_cpus_evenly_in_id_order(void **state)
{
	static const int16_t want[8] = { 0, 0, 1, 1, 2, 2, 3, 3 };
	struct policy_topology t;

	policy_topology_single(&t, 8);
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	assert_memory_equal(t.cpu_node, want, sizeof(want));
	assert_int_equal(t.nr_cpus, 8);
}

static void fake_uneven_split_differs_by_at_most_one(void **state)
{
	struct policy_topology t;
	int count[3] = { 0 };

	policy_topology_single(&t, 10);
	assert_int_equal(policy_topology_fake(&t, 3), 0);
	for (int c = 0; c < 10; c++) {
		assert_in_range(t.cpu_node[c], 0, 2);
		if (c > 0)
			assert_true(t.cpu_node[c] >= t.cpu_node[c - 1]);
		count[t.cpu_node[c]]++;
	}
	for (int n = 0; n < 3; n++)
		assert_in_range(count[n], 3, 4);
}

static void fake_skips_absent_cpus(void **state)
{
	struct policy_topology t;

	faketopo_empty(&t);
	faketopo_add_node(&t, 0, 0, 1, true);
	faketopo_add_node(&t, 1, 4, 5, true);
	assert_int_equal(policy_topology_fake(&t, 2), 0);
	assert_int_equal(t.cpu_node[0], 0);
	assert_int_equal(t.cpu_node[1], 0);
	assert_int_equal(t.cpu_node[2], -1);
	assert_int_equal(t.cpu_node[3], -1);
	assert_int_equal(t.cpu_node[4], 1);
	assert_int_equal(t.cpu_node[5], 1);
}

static void fake_memory_of_node_k_is_on_real_node_k_mod_r(void **state)
{
	struct policy_topology t;

	faketopo_two(&t);
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	assert_int_equal(t.mem_node[0], 0);
	assert_int_equal(t.mem_node[1], 1);
	assert_int_equal(t.mem_node[2], 0);
	assert_int_equal(t.mem_node[3], 1);
}

static void fake_memory_only_on_allowed_real_nodes(void **state)
{
	struct policy_topology t;

	faketopo_cpuset(&t);  /* real node 3 not allowed */
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	assert_int_equal(t.mem_node[0], 0);
	assert_int_equal(t.mem_node[1], 1);
	assert_int_equal(t.mem_node[2], 2);
	assert_int_equal(t.mem_node[3], 0);
}

static void fake_memory_not_on_a_memoryless_real_node(void **state)
{
	struct policy_topology t;

	faketopo_memoryless(&t);  /* real node 2 has no memory */
	assert_int_equal(policy_topology_fake(&t, 3), 0);
	assert_int_equal(t.mem_node[0], 0);
	assert_int_equal(t.mem_node[1], 1);
	assert_int_equal(t.mem_node[2], 0);
}

static void fake_distances_are_10_local_20_remote(void **state)
{
	struct policy_topology t;

	faketopo_four(&t);
	assert_int_equal(policy_topology_fake(&t, 2), 0);
	assert_int_equal(policy_distance(&t, 0, 0), 10);
	assert_int_equal(policy_distance(&t, 1, 1), 10);
	assert_int_equal(policy_distance(&t, 0, 1), 20);
	/* The real SLIT (30 between the pairs) is gone. */
	assert_int_equal(t.distance[0][2], 0);
	assert_int_equal(t.distance[1][3], 0);
}

static void fake_nodes_are_online_with_memory_and_allowed(void **state)
{
	struct policy_topology t;

	faketopo_cpuset(&t);
	assert_int_equal(policy_topology_fake(&t, 5), 0);
	assert_int_equal(t.nr_nodes, 5);
	assert_int_equal(t.online, 0x1f);
	assert_int_equal(t.has_memory, 0x1f);
	assert_int_equal(t.allowed, 0x1f);
	assert_int_equal(t.fake, 5);
}

static void fake_one_node_holds_every_cpu(void **state)
{
	struct policy_topology t;

	faketopo_two(&t);
	assert_int_equal(policy_topology_fake(&t, 1), 0);
	for (int c = 0; c < 8; c++)
		assert_int_equal(t.cpu_node[c], 0);
	assert_int_equal(t.online, 1);
	assert_int_equal(t.fake, 1);
}

static void fake_64_nodes_fill_the_mask(void **state)
{
	struct policy_topology t;

	policy_topology_single(&t, 64);
	assert_int_equal(policy_topology_fake(&t, 64), 0);
	assert_int_equal(t.online, ALL);
	assert_int_equal(t.has_memory, ALL);
	assert_int_equal(t.allowed, ALL);
	for (int c = 0; c < 64; c++)
		assert_int_equal(t.cpu_node[c], c);
}

static void fake_rejects_zero_and_more_than_64_nodes(void **state)
{
	struct policy_topology t, before;

	policy_topology_single(&t, 128);
	memcpy(&before, &t, sizeof(t));
	assert_int_equal(policy_topology_fake(&t, 0), -EINVAL);
	assert_int_equal(policy_topology_fake(&t, -1), -EINVAL);
	assert_int_equal(policy_topology_fake(&t, 65), -EINVAL);
	assert_memory_equal(&t, &before, sizeof(t));
}

static void fake_rejects_more_nodes_than_cpus(void **state)
{
	struct policy_topology t, before;

	faketopo_single(&t);  /* 4 CPUs */
	memcpy(&before, &t, sizeof(t));
	assert_int_equal(policy_topology_fake(&t, 5), -EINVAL);
	assert_memory_equal(&t, &before, sizeof(t));
	assert_int_equal(policy_topology_fake(&t, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(distance_reads_the_slit),
		cmocka_unit_test(distance_unknown_is_10_local_20_remote),
		cmocka_unit_test(distance_of_invalid_node_is_255),
		cmocka_unit_test(nearest_is_the_node_itself_when_a_candidate),
		cmocka_unit_test(nearest_picks_the_smallest_distance),
		cmocka_unit_test(nearest_tie_picks_the_lowest_id),
		cmocka_unit_test(nearest_from_memoryless_node_is_nearest_memory_node),
		cmocka_unit_test(nearest_of_no_candidates_is_minus_one),
		cmocka_unit_test(nearest_from_unknown_node_is_the_lowest_candidate),
		cmocka_unit_test(single_has_one_node_with_every_cpu),
		cmocka_unit_test(single_clamps_the_cpu_count),
		cmocka_unit_test(fake_splits_cpus_evenly_in_id_order),
		cmocka_unit_test(fake_uneven_split_differs_by_at_most_one),
		cmocka_unit_test(fake_skips_absent_cpus),
		cmocka_unit_test(fake_memory_of_node_k_is_on_real_node_k_mod_r),
		cmocka_unit_test(fake_memory_only_on_allowed_real_nodes),
		cmocka_unit_test(fake_memory_not_on_a_memoryless_real_node),
		cmocka_unit_test(fake_distances_are_10_local_20_remote),
		cmocka_unit_test(fake_nodes_are_online_with_memory_and_allowed),
		cmocka_unit_test(fake_one_node_holds_every_cpu),
		cmocka_unit_test(fake_64_nodes_fill_the_mask),
		cmocka_unit_test(fake_rejects_zero_and_more_than_64_nodes),
		cmocka_unit_test(fake_rejects_more_nodes_than_cpus),
	};

	return cmocka_run_group_tests_name("policy/topology.c", tests, NULL, NULL);
}
