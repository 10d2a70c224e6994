/*
 * policy/plan.c, part 4: which nodes the large-block set spans
 * (NUMASHIM_INTERLEAVE_NODES) and with which weights
 * (NUMASHIM_INTERLEAVE_WEIGHTS), real and emulated; every plan resolved
 * here is checked by assert_plan_usable (unit.c).
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <string.h>

#define PREFERRED POLICY_MPOL_PREFERRED
#define BIND POLICY_MPOL_BIND

/* ------------------------------------------------------ interleave nodes */

static void interleave_nodes_narrow_only_the_large_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=1-2"));
	assert_large_set(&r, NODES(1, 2));
	assert_weights(&r, 0, 1, 1, 0);
	assert_int_equal(plan_node_sets(&r.plan), 4);
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2, 3));
	assert_int_equal(r.log.count, 0);
}

static void interleave_nodes_inversion_is_relative_to_usable(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=!0"));
	assert_large_set(&r, NODES(1, 2));
	assert_int_equal(r.log.count, 0);
}

static void interleave_nodes_missing_nodes_warn_once_and_narrow(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=2-5"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "2-5");
	assert_string_equal(r.log.w[0].fallback, "2-3");
	assert_large_set(&r, NODES(2, 3));
}

static void interleave_nodes_only_missing_nodes_warn_once_use_all(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=6-7"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "6-7");
	assert_string_equal(r.log.w[0].fallback, "0-3");
	assert_large_set(&r, NODES(0, 1, 2, 3));
}

static void interleave_nodes_outside_cpuset_warn_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=2-3"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "2-3");
	assert_string_equal(r.log.w[0].fallback, "2");
	/* One node left, the one named: large blocks go there, as said. */
	assert_set(&r.plan, r.plan.large_set, -1, PREFERRED, NODES(2));
}

static void interleave_nodes_memoryless_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=1-2"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "1-2");
	assert_set(&r.plan, r.plan.large_set, -1, PREFERRED, NODES(1));
}

/* One node named for large blocks (a memory tier, say) is honoured; one
 * node left by the policy's own is not a set of its own. */
static void one_named_large_node_is_a_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=1"));
	assert_int_equal(r.log.count, 0);
	assert_set(&r.plan, r.plan.large_set, -1, PREFERRED, NODES(1));
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:1"));
	assert_int_equal(r.log.count, 0);
	assert_set(&r.plan, r.plan.large_set, -1, PREFERRED, NODES(0));
	assert_true(r.plan.vweighted);
	/* Bound as the policy binds a node: strictly under bind. */
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:0-1",
				"NUMASHIM_INTERLEAVE_NODES=1"));
	assert_set(&r.plan, r.plan.large_set, -1, BIND, NODES(1));
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:1"));
	assert_int_equal(r.log.count, 0);
	assert_int_equal(r.plan.large_set, -1);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=0"));
	assert_int_equal(r.plan.large_set, -1);
	/* "all" names no node: the plan is the one without the variable. */
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:1",
				"NUMASHIM_INTERLEAVE_NODES=all"));
	assert_int_equal(r.plan.large_set, -1);
	/* A preferred node the machine lacks falls back to local: then it
	 * is NUMASHIM_NODES that narrows the list. */
	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:7", "NUMASHIM_NODES=0-1",
				"NUMASHIM_INTERLEAVE_NODES=1-2"));
	assert_int_equal(r.log.count, 2);
	assert_string_equal(r.log.w[1].why, "lists a node outside NUMASHIM_NODES");
	faketopo_two(&t);
	/* Narrowed by the policy: the message names the policy. */
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:1",
				"NUMASHIM_INTERLEAVE_NODES=0-1"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "0-1");
	assert_string_equal(r.log.w[0].why,
			    "lists a node outside the nodes of NUMASHIM_POLICY");
	assert_string_equal(r.log.w[0].fallback, "1");
	assert_set(&r.plan, r.plan.large_set, -1, PREFERRED, NODES(1));
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=0", "NUMASHIM_INTERLEAVE_NODES=0-1"));
	assert_string_equal(r.log.w[0].why, "lists a node outside NUMASHIM_NODES");
	/* Weights that were refused are not the statistics' either. */
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=0",
				"NUMASHIM_INTERLEAVE_WEIGHTS=0:3,1:1"));
	assert_false(r.plan.vweighted);
}

/* "+N" is the N-th usable node: there is no fifth one on four nodes. */
static void interleave_nodes_relative_past_the_last_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=+4"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "+4");
	assert_large_set(&r, NODES(0, 1, 2, 3));
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=+2-5"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "+2-5");
}

/* Like NUMASHIM_NODES, preferred:N and bind:NODES (plan_modes.c): an
 * impossible request is reported on any machine. */
static void interleave_nodes_missing_node_on_one_node_machine_warns(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=1"));
	assert_false(r.plan.active);
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "1");
}

/* ------------------------------------------------------ weights */

/* Nothing is large under NUMASHIM_INTERLEAVE_MIN=off: the large blocks'
 * nodes and weights are said to go unused, a node that does not exist
 * included (nothing was said). */
static void interleave_settings_with_min_off_warn_once_each(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=off",
				"NUMASHIM_INTERLEAVE_NODES=7"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "7");
	assert_string_equal(r.log.w[0].why,
			    "has no effect with NUMASHIM_INTERLEAVE_MIN=off");
	assert_int_equal(r.plan.large_set, -1);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=off",
				"NUMASHIM_INTERLEAVE_WEIGHTS=0:3,1:1"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_WEIGHTS", "0:3,1:1");
	assert_int_equal(r.plan.large_set, -1);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=off"));
	assert_int_equal(r.log.count, 0);
	/* As on a machine where numashim has nothing to place. */
	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=off",
				"NUMASHIM_INTERLEAVE_NODES=1"));
	assert_false(r.plan.active);
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_NODES", "1");
}

static void weights_go_to_their_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:3,1:1"));
	assert_large_set(&r, NODES(0, 1));
	assert_weights(&r, 3, 1, 0, 0);
	assert_true(r.plan.weighted);
	assert_int_equal(r.log.count, 0);
}

static void equal_weights_are_not_weighted(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:5,1:5,2:5,3:5"));
	assert_large_set(&r, NODES(0, 1, 2, 3));
	assert_false(r.plan.weighted);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=equal"));
	assert_false(r.plan.weighted);
	assert_weights(&r, 1, 1, 1, 1);
}

/* Interleave nodes the weights do not name get no weight: they drop out. */
static void weights_leave_out_unweighted_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:3,2:1"));
	assert_large_set(&r, NODES(0, 2));
	assert_weights(&r, 3, 0, 1, 0);
	assert_true(r.plan.weighted);
	assert_int_equal(r.log.count, 0);
}

static void weights_within_interleave_nodes_are_kept(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=1-2",
				"NUMASHIM_INTERLEAVE_WEIGHTS=1:1,2:4"));
	assert_large_set(&r, NODES(1, 2));
	assert_weights(&r, 0, 1, 4, 0);
	assert_int_equal(r.log.count, 0);
}

static void weight_outside_interleave_nodes_warns_once_uses_equal(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_NODES=0-1",
				"NUMASHIM_INTERLEAVE_WEIGHTS=0:1,2:5"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,2:5");
	assert_large_set(&r, NODES(0, 1));
	assert_weights(&r, 1, 1, 0, 0);
	assert_false(r.plan.weighted);
}

static void weight_on_missing_or_disallowed_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:1,7:3"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,7:3");
	assert_large_set(&r, NODES(0, 1, 2, 3));
	assert_false(r.plan.weighted);
	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:1,3:3"));
	assert_one_warning(&r.log, "NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,3:3");
	assert_large_set(&r, NODES(0, 1, 2));
}

/* Virtual nodes 0 and 2 live on real node 0, 1 and 3 on real node 1. */
static void fake_nodes_sharing_a_real_node_add_up(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:1,1:1,2:3,3:1"));
	assert_large_set(&r, NODES(0, 1));
	/* 4:2 per real node, kept in lowest terms. */
	assert_weights(&r, 2, 1, 0, 0);
	assert_true(r.plan.weighted);
	resolve_env(&r, &t, ENV(NULL));
	assert_weights(&r, 1, 1, 0, 0);
	assert_false(r.plan.weighted);
}

static void fake_nodes_on_one_real_node_interleave_over_it(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS=0:1,1:2,2:3,3:4"));
	assert_large_set(&r, NODES(0));
	assert_false(r.plan.weighted);
}

/* Real node 0 has 3 x 100, real node 1 3 x 50: 2:1, even past 255. */
static void fake_weights_past_255_keep_their_proportion(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	assert_int_equal(policy_topology_fake(&t, 6), 0);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_WEIGHTS="
				"0:100,2:100,4:100,1:50,3:50,5:50"));
	assert_large_set(&r, NODES(0, 1));
	print_message("real weights %d:%d\n", r.plan.weight[0], r.plan.weight[1]);
	assert_int_equal(r.plan.weight[0], 2 * r.plan.weight[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(interleave_nodes_narrow_only_the_large_set),
		cmocka_unit_test(interleave_nodes_inversion_is_relative_to_usable),
		cmocka_unit_test(interleave_nodes_missing_nodes_warn_once_and_narrow),
		cmocka_unit_test(interleave_nodes_only_missing_nodes_warn_once_use_all),
		cmocka_unit_test(interleave_nodes_outside_cpuset_warn_once),
		cmocka_unit_test(interleave_nodes_memoryless_node_warns_once),
		cmocka_unit_test(one_named_large_node_is_a_set),
		cmocka_unit_test(interleave_nodes_relative_past_the_last_node_warns_once),
		cmocka_unit_test(interleave_nodes_missing_node_on_one_node_machine_warns),
		cmocka_unit_test(interleave_settings_with_min_off_warn_once_each),
		cmocka_unit_test(weights_go_to_their_nodes),
		cmocka_unit_test(equal_weights_are_not_weighted),
		cmocka_unit_test(weights_leave_out_unweighted_nodes),
		cmocka_unit_test(weights_within_interleave_nodes_are_kept),
		cmocka_unit_test(weight_outside_interleave_nodes_warns_once_uses_equal),
		cmocka_unit_test(weight_on_missing_or_disallowed_node_warns_once),
		cmocka_unit_test(fake_nodes_sharing_a_real_node_add_up),
		cmocka_unit_test(fake_nodes_on_one_real_node_interleave_over_it),
		cmocka_unit_test(fake_weights_past_255_keep_their_proportion),
	};

	return cmocka_run_group_tests_name("policy/plan.c: large-block nodes",
					   tests, NULL, NULL);
}
