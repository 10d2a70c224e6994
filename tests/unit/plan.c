/*
 * policy/plan.c, part 1: passthrough, the local policy and NUMASHIM_NODES
 * on fake 1/2/4/8-node, memoryless, memory-only and cpuset machines.
 * (plan_modes.c covers preferred, interleave, bind and fake nodes.)
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <string.h>

#define PREF POLICY_MPOL_PREFERRED
#define BIND POLICY_MPOL_BIND

/* ------------------------------------------------------ passthrough */

static void one_node_is_passthrough_with_a_reason(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=local"));
	assert_false(r.plan.active);
	assert_non_null(r.plan.reason);
	assert_int_equal(plan_node_sets(&r.plan), 0);
	assert_int_equal(r.log.count, 0);
}

static void one_node_interleave_is_passthrough(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_false(r.plan.active);
	assert_int_equal(r.log.count, 0);
}

static void one_node_preferred_0_is_passthrough(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:0"));
	assert_false(r.plan.active);
	assert_int_equal(r.log.count, 0);
}

static void policy_off_is_passthrough_on_every_machine(void **state)
{
	void (*const make[])(struct policy_topology *) = {
		faketopo_single, faketopo_two, faketopo_four, faketopo_eight,
		faketopo_memoryless, faketopo_memonly, faketopo_cpuset,
	};

	for (size_t i = 0; i < sizeof(make) / sizeof(make[0]); i++) {
		struct policy_topology t;
		struct resolved r;

		make[i](&t);
		resolve_env(&r, &t, ENV("NUMASHIM_POLICY=off"));
		assert_false(r.plan.active);
		assert_non_null(strstr(r.plan.reason, "off"));
		assert_int_equal(r.plan.mode, POLICY_OFF);
		assert_int_equal(r.log.count, 0);
	}
}

static void cpuset_of_one_node_is_passthrough(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	t.allowed = NODES(1);
	resolve_env(&r, &t, ENV(NULL));
	assert_false(r.plan.active);
	assert_int_equal(r.log.count, 0);
}

/* ------------------------------------------------------ local */

static void local_two_nodes_has_a_preferred_set_per_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.mode, POLICY_LOCAL);
	assert_int_equal(r.plan.nodes, NODES(0, 1));
	assert_int_equal(plan_node_sets(&r.plan), 2);
	assert_set(&r.plan, 0, 0, PREF, NODES(0));
	assert_set(&r.plan, 1, 1, PREF, NODES(1));
	assert_int_equal(r.plan.set[0].cpus, 4);
	assert_int_equal(r.plan.set[1].cpus, 4);
	assert_int_equal(r.log.count, 0);
}

static void local_cpus_use_their_own_node_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=local"));
	assert_int_equal(plan_node_sets(&r.plan), 4);
	for (int n = 0; n < 4; n++) {
		assert_set(&r.plan, plan_set_of_node(&r.plan, n), n, PREF,
			   NODES(n));
		assert_cpus_use(&r.plan, 4 * n, 4 * n + 3, n);
	}
}

/* A CPU the plan does not map (online only after the start: sysfs listed
 * it on no node) is not known; policy_set_for_cpu would give it the
 * default set, node 0's, and the shim's re-check keeps the thread's arena
 * there instead. */
static void cpus_outside_the_plan_are_not_known(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	t.cpu_node[5] = -1; /* offline at the start */
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=local"));
	assert_true(policy_cpu_known(&r.plan, 0));
	assert_true(policy_cpu_known(&r.plan, 15));
	assert_false(policy_cpu_known(&r.plan, 5));
	assert_false(policy_cpu_known(&r.plan, 16));
	assert_false(policy_cpu_known(&r.plan, -1));
	assert_false(policy_cpu_known(&r.plan, POLICY_MAX_CPUS));
	assert_int_equal(policy_set_for_cpu(&r.plan, 16), r.plan.default_set);
}

static void local_eight_nodes_without_slit(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_eight(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(plan_node_sets(&r.plan), 8);
	assert_int_equal(r.plan.nodes, 0xff);
	for (int n = 0; n < 8; n++)
		assert_cpus_use(&r.plan, 2 * n, 2 * n + 1, n);
}

static void local_strict_uses_mpol_bind(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_STRICT=1"));
	assert_int_equal(plan_node_sets(&r.plan), 4);
	for (int s = 0; s < 4; s++)
		assert_int_equal(r.plan.set[s].mpol, BIND);
}

static void local_memoryless_node_has_no_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(r.plan.nodes, NODES(0, 1));
	assert_int_equal(plan_node_sets(&r.plan), 2);
	assert_int_equal(plan_set_of_node(&r.plan, 2), -1);
	assert_int_equal(r.log.count, 0);
}

/* Node 2 is 20 from node 1 and 30 from node 0. */
static void local_memoryless_node_cpus_use_nearest_memory_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_cpus_use(&r.plan, 0, 1, 0);
	assert_cpus_use(&r.plan, 2, 5, 1);
	assert_int_equal(r.plan.set[plan_set_of_node(&r.plan, 1)].cpus, 4);
}

static void local_memory_only_node_has_a_set_without_cpus(void **state)
{
	struct policy_topology t;
	struct resolved r;
	int s;

	faketopo_memonly(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(plan_node_sets(&r.plan), 3);
	s = plan_set_of_node(&r.plan, 2);
	assert_set(&r.plan, s, 2, PREF, NODES(2));
	assert_int_equal(r.plan.set[s].cpus, 0);
	assert_cpus_use(&r.plan, 0, 3, 0);
	assert_cpus_use(&r.plan, 4, 7, 1);
}

static void local_cpuset_excluded_node_has_no_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2));
	assert_int_equal(plan_node_sets(&r.plan), 3);
	assert_int_equal(plan_set_of_node(&r.plan, 3), -1);
	assert_int_equal(r.log.count, 0);
}

/* Node 3 is 20 from node 2 and 30 from nodes 0 and 1. */
static void local_cpuset_excluded_node_cpus_use_nearest_allowed(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_cpus_use(&r.plan, 12, 15, 2);
	assert_int_equal(r.plan.set[plan_set_of_node(&r.plan, 2)].cpus, 8);
}

/* ------------------------------------------------------ NUMASHIM_NODES */

static void nodes_env_limits_the_sets(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=!2"));
	assert_int_equal(r.plan.nodes, NODES(0, 1, 3));
	assert_int_equal(plan_node_sets(&r.plan), 3);
	assert_int_equal(plan_set_of_node(&r.plan, 2), -1);
	assert_int_equal(r.log.count, 0);
}

static void nodes_env_excluded_cpus_use_nearest_listed_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=0,1,3"));
	assert_cpus_use(&r.plan, 8, 11, 3);  /* node 2: 3 is 20 away */
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=0-1"));
	assert_cpus_use(&r.plan, 8, 15, 0);  /* 0 and 1 both 30: lowest id */
}

static void nodes_env_all_is_every_usable_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=all"));
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2));
	assert_int_equal(r.log.count, 0);
}

static void nodes_env_inversion_is_relative_to_usable_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=!0"));
	assert_int_equal(r.plan.nodes, NODES(1, 2));
	assert_int_equal(r.log.count, 0);
}

static void nodes_env_relative_counts_usable_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	t.allowed = NODES(0, 2, 3);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=+1-2"));
	assert_int_equal(r.plan.nodes, NODES(2, 3));
	assert_int_equal(r.log.count, 0);
}

static void nodes_env_missing_nodes_warn_once_and_narrow(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=0-5"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "0-5");
	assert_string_equal(r.log.w[0].fallback, "0-3");
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2, 3));
	assert_int_equal(plan_node_sets(&r.plan), 4);
}

static void nodes_env_only_missing_nodes_warn_once_use_all(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=6-7"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "6-7");
	assert_string_equal(r.log.w[0].fallback, "0-3");
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2, 3));
}

static void nodes_env_memoryless_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=1-2"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "1-2");
	assert_int_equal(r.plan.nodes, NODES(1));
	assert_int_equal(plan_node_sets(&r.plan), 1);
	assert_cpus_use(&r.plan, 0, 5, 1);
}

static void nodes_env_outside_cpuset_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=2-3"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "2-3");
	assert_int_equal(r.plan.nodes, NODES(2));
	assert_int_equal(r.plan.set[0].mask, NODES(2));
}

static void nodes_env_only_outside_cpuset_warns_once_uses_allowed(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=3"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "3");
	assert_string_equal(r.log.w[0].fallback, "0-2");
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2));
}

/* "+N" is the N-th usable node: there is no fifth one on four nodes. */
static void nodes_env_relative_past_the_last_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=+4"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "+4");
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2, 3));
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=+2-5"));
	assert_one_warning(&r.log, "NUMASHIM_NODES", "+2-5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_node_is_passthrough_with_a_reason),
		cmocka_unit_test(one_node_interleave_is_passthrough),
		cmocka_unit_test(one_node_preferred_0_is_passthrough),
		cmocka_unit_test(policy_off_is_passthrough_on_every_machine),
		cmocka_unit_test(cpuset_of_one_node_is_passthrough),
		cmocka_unit_test(local_two_nodes_has_a_preferred_set_per_node),
		cmocka_unit_test(local_cpus_use_their_own_node_set),
		cmocka_unit_test(cpus_outside_the_plan_are_not_known),
		cmocka_unit_test(local_eight_nodes_without_slit),
		cmocka_unit_test(local_strict_uses_mpol_bind),
		cmocka_unit_test(local_memoryless_node_has_no_set),
		cmocka_unit_test(local_memoryless_node_cpus_use_nearest_memory_node),
		cmocka_unit_test(local_memory_only_node_has_a_set_without_cpus),
		cmocka_unit_test(local_cpuset_excluded_node_has_no_set),
		cmocka_unit_test(local_cpuset_excluded_node_cpus_use_nearest_allowed),
		cmocka_unit_test(nodes_env_limits_the_sets),
		cmocka_unit_test(nodes_env_excluded_cpus_use_nearest_listed_node),
		cmocka_unit_test(nodes_env_all_is_every_usable_node),
		cmocka_unit_test(nodes_env_inversion_is_relative_to_usable_nodes),
		cmocka_unit_test(nodes_env_relative_counts_usable_nodes),
		cmocka_unit_test(nodes_env_missing_nodes_warn_once_and_narrow),
		cmocka_unit_test(nodes_env_only_missing_nodes_warn_once_use_all),
		cmocka_unit_test(nodes_env_memoryless_node_warns_once),
		cmocka_unit_test(nodes_env_outside_cpuset_warns_once),
		cmocka_unit_test(nodes_env_only_outside_cpuset_warns_once_uses_allowed),
		cmocka_unit_test(nodes_env_relative_past_the_last_node_warns_once),
	};

	return cmocka_run_group_tests_name("policy/plan.c: local", tests, NULL,
					   NULL);
}
