/*
 * policy/place.c: the node a new thread goes to under NUMASHIM_THREADS
 * (policy_thread_node), spread and compact, on fake topologies.
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <limits.h>
#include <string.h>

/* A plan over `nodes`: policy_thread_node reads only the node set. */
static struct policy_plan plan_over(policy_nodemask_t nodes)
{
	struct policy_plan p;

	memset(&p, 0, sizeof(p));
	p.active = true;
	p.nodes = nodes;
	return p;
}

static void spread_puts_2_of_8_threads_on_each_of_4_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;
	int cpus_of[POLICY_MAX_NODES] = { 4, 4, 4, 4 }, per[4] = { 0 };

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_THREADS=spread"));
	for (unsigned long k = 0; k < 8; k++) {
		int n = policy_thread_node(&r.plan, r.plan.threads, k, cpus_of);

		assert_int_equal(n, (int)(k % 4));
		per[n]++;
	}
	for (int n = 0; n < 4; n++)
		assert_int_equal(per[n], 2);
}

static void spread_skips_nodes_without_cpus(void **state)
{
	struct policy_plan p = plan_over(NODES(0, 1, 2, 3));
	int cpus_of[POLICY_MAX_NODES] = { 4, 0, 2, 1 };
	const int want[] = { 0, 2, 3, 0, 2, 3 };

	for (unsigned long k = 0; k < 6; k++)
		assert_int_equal(policy_thread_node(&p, POLICY_THREADS_SPREAD,
						    k, cpus_of), want[k]);
}

static void spread_uses_only_the_plan_nodes(void **state)
{
	struct policy_plan p = plan_over(NODES(1, 3));
	int cpus_of[POLICY_MAX_NODES] = { 4, 4, 4, 4 };

	for (unsigned long k = 0; k < 8; k++)
		assert_int_equal(policy_thread_node(&p, POLICY_THREADS_SPREAD,
						    k, cpus_of), k % 2 ? 3 : 1);
}

static void spread_wraps_at_any_count(void **state)
{
	struct policy_plan p = plan_over(NODES(0, 1, 2));
	int cpus_of[POLICY_MAX_NODES] = { 1, 1, 1 };

	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_SPREAD,
					    ULONG_MAX, cpus_of),
			 (int)(ULONG_MAX % 3));
}

static void compact_fills_each_node_in_order(void **state)
{
	struct policy_plan p = plan_over(NODES(0, 1, 2, 3));
	int cpus_of[POLICY_MAX_NODES] = { 2, 3, 0, 1 };
	const int want[] = { 0, 0, 1, 1, 1, 3 };

	for (unsigned long k = 0; k < 6; k++)
		assert_int_equal(policy_thread_node(&p, POLICY_THREADS_COMPACT,
						    k, cpus_of), want[k]);
}

static void compact_starts_again_when_every_cpu_has_a_thread(void **state)
{
	struct policy_plan p = plan_over(NODES(0, 1, 2, 3));
	int cpus_of[POLICY_MAX_NODES] = { 2, 3, 0, 1 };
	const int want[] = { 0, 0, 1, 1, 1, 3 };

	for (unsigned long k = 6; k < 30; k++)
		assert_int_equal(policy_thread_node(&p, POLICY_THREADS_COMPACT,
						    k, cpus_of), want[k % 6]);
	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_COMPACT,
					    6000000000005UL, cpus_of), 3);
	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_COMPACT,
					    ULONG_MAX, cpus_of),
			 want[ULONG_MAX % 6]);
}

static void compact_on_a_resolved_plan(void **state)
{
	struct policy_topology t;
	struct resolved r;
	int cpus_of[POLICY_MAX_NODES] = { 4, 4, 4, 4 };

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_THREADS=compact",
				"NUMASHIM_NODES=1-2"));
	for (unsigned long k = 0; k < 16; k++)
		assert_int_equal(policy_thread_node(&r.plan, r.plan.threads, k,
						    cpus_of), k % 8 < 4 ? 1 : 2);
}

static void mode_none_places_no_thread(void **state)
{
	struct policy_plan p = plan_over(NODES(0, 1));
	int cpus_of[POLICY_MAX_NODES] = { 4, 4 };

	for (unsigned long k = 0; k < 4; k++)
		assert_int_equal(policy_thread_node(&p, POLICY_THREADS_NONE,
						    k, cpus_of), -1);
}

static void no_node_with_cpus_places_no_thread(void **state)
{
	struct policy_plan p = plan_over(NODES(0, 1));
	int none[POLICY_MAX_NODES] = { 0 }, other[POLICY_MAX_NODES] = { 0, 0, 4 };

	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_SPREAD, 0, none), -1);
	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_COMPACT, 0, none), -1);
	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_SPREAD, 3, other), -1);
	assert_int_equal(policy_thread_node(&p, POLICY_THREADS_COMPACT, 3, other), -1);
}

/* preferred:2 on the memory-only node: its plan node has no CPU. */
static void memory_only_plan_node_places_no_thread(void **state)
{
	struct policy_topology t;
	struct resolved r;
	int cpus_of[POLICY_MAX_NODES] = { 4, 4, 0 };

	faketopo_memonly(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:2",
				"NUMASHIM_THREADS=spread"));
	assert_int_equal(policy_thread_node(&r.plan, r.plan.threads, 0,
					    cpus_of), -1);
	resolve_env(&r, &t, ENV("NUMASHIM_THREADS=spread"));
	for (unsigned long k = 0; k < 6; k++)
		assert_int_equal(policy_thread_node(&r.plan, r.plan.threads, k,
						    cpus_of), (int)(k % 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spread_puts_2_of_8_threads_on_each_of_4_nodes),
		cmocka_unit_test(spread_skips_nodes_without_cpus),
		cmocka_unit_test(spread_uses_only_the_plan_nodes),
		cmocka_unit_test(spread_wraps_at_any_count),
		cmocka_unit_test(compact_fills_each_node_in_order),
		cmocka_unit_test(compact_starts_again_when_every_cpu_has_a_thread),
		cmocka_unit_test(compact_on_a_resolved_plan),
		cmocka_unit_test(mode_none_places_no_thread),
		cmocka_unit_test(no_node_with_cpus_places_no_thread),
		cmocka_unit_test(memory_only_plan_node_places_no_thread),
	};

	return cmocka_run_group_tests_name("policy/place.c: threads", tests,
					  NULL, NULL);
}
