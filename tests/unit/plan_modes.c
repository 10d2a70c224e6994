/*
 * policy/plan.c, part 2: preferred, interleave and bind, impossible
 * requests, emulated nodes, and a sweep that every plan is usable.
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

#define PREF POLICY_MPOL_PREFERRED
#define BIND POLICY_MPOL_BIND
#define INTERLEAVE POLICY_MPOL_INTERLEAVE

/* ------------------------------------------------------ preferred */

static void preferred_has_one_set_for_every_cpu(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:2"));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.mode, POLICY_PREFERRED);
	assert_int_equal(r.plan.nodes, NODES(2));
	assert_int_equal(plan_node_sets(&r.plan), 1);
	assert_set(&r.plan, 0, 2, PREF, NODES(2));
	assert_int_equal(r.plan.set[0].cpus, 16);
	assert_cpus_use(&r.plan, 0, 15, 2);
	assert_int_equal(r.log.count, 0);
}

static void preferred_strict_uses_mpol_bind(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:1",
				"NUMASHIM_STRICT=on"));
	assert_set(&r.plan, 0, 1, BIND, NODES(1));
}

static void preferred_memory_only_node_serves_every_cpu(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memonly(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:2"));
	assert_int_equal(plan_node_sets(&r.plan), 1);
	assert_set(&r.plan, 0, 2, PREF, NODES(2));
	assert_cpus_use(&r.plan, 0, 7, 2);
	assert_int_equal(r.log.count, 0);
}

/* Falls back to local over the usable nodes. */
static void assert_local_fallback(const struct resolved *r,
				  policy_nodemask_t nodes)
{
	assert_true(r->plan.active);
	assert_int_equal(r->plan.mode, POLICY_LOCAL);
	assert_int_equal(r->plan.nodes, nodes);
	assert_int_equal(plan_node_sets(&r->plan), __builtin_popcountll(nodes));
	assert_string_equal(r->log.w[0].fallback, "local");
}

static void preferred_missing_node_warns_once_falls_back_to_local(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:5"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "preferred:5");
	assert_local_fallback(&r, NODES(0, 1, 2, 3));
}

static void preferred_memoryless_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:2"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "preferred:2");
	assert_local_fallback(&r, NODES(0, 1));
}

static void preferred_node_outside_cpuset_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:3"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "preferred:3");
	assert_local_fallback(&r, NODES(0, 1, 2));
}

static void preferred_node_outside_nodes_env_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:3",
				"NUMASHIM_NODES=0-1"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "preferred:3");
	assert_local_fallback(&r, NODES(0, 1));
}

static void preferred_two_digit_node_is_named(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_eight(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:42"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "preferred:42");
}

/* The request is impossible whether or not the machine has one node. */
static void preferred_missing_node_on_one_node_machine_warns(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:1"));
	assert_false(r.plan.active);
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "preferred:1");
}

/* ------------------------------------------------------ interleave */

static void interleave_has_one_set_over_every_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.mode, POLICY_INTERLEAVE);
	assert_int_equal(plan_node_sets(&r.plan), 0);
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 1, 2, 3));
	assert_int_equal(r.plan.set[0].cpus, 16);
	assert_cpus_use(&r.plan, 0, 15, -1);
	assert_int_equal(r.log.count, 0);
}

static void interleave_ignores_strict(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave",
				"NUMASHIM_STRICT=1"));
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 1));
}

static void interleave_skips_memoryless_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 1));
	assert_int_equal(r.plan.set[0].cpus, 6);
}

static void interleave_skips_node_outside_cpuset(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 1, 2));
}

static void interleave_includes_memory_only_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memonly(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 1, 2));
}

static void interleave_over_nodes_env(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_eight(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave",
				"NUMASHIM_NODES=0,2,4-5"));
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 2, 4, 5));
	assert_int_equal(r.plan.set[0].cpus, 16);
}

/* NUMASHIM_NODES leaves one node to interleave over: all memory goes
 * there, as asked, and the line says so (it was passed through, silently). */
static void interleave_over_one_node_prefers_it(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave",
				"NUMASHIM_NODES=1"));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.mode, POLICY_PREFERRED);
	assert_int_equal(r.plan.nr_sets, 1);
	assert_set(&r.plan, 0, 1, PREF, NODES(1));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "interleave");
	assert_string_equal(r.log.w[0].fallback, "preferred:1");
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave", "NUMASHIM_NODES=1",
				"NUMASHIM_STRICT=1"));
	assert_set(&r.plan, 0, 1, BIND, NODES(1));
}

/* MPOL_BIND for every range: NUMASHIM_STRICT, or bind:NODES itself. */
static void strict_comes_from_the_option_or_bind(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_false(r.plan.strict);
	resolve_env(&r, &t, ENV("NUMASHIM_STRICT=1"));
	assert_true(r.plan.strict);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:0-1"));
	assert_true(r.plan.strict);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_false(r.plan.strict);
}

/* "+N" counts the allowed nodes: past the last one is reported, not read
 * as node N. */
static void bind_relative_past_the_allowed_nodes_warns(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t); /* nodes 0-2 allowed */
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:+3"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "bind:+3");
	assert_string_equal(r.log.w[0].why, "counts past the last usable node");
	assert_string_equal(r.log.w[0].fallback, "0-2");
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:+2"));
	assert_int_equal(r.log.count, 0);
	assert_int_equal(r.plan.nodes, NODES(2));
}

/* ------------------------------------------------------ bind */

static void bind_has_a_bind_set_per_listed_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:0-1"));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.mode, POLICY_BIND);
	assert_int_equal(r.plan.nodes, NODES(0, 1));
	assert_int_equal(plan_node_sets(&r.plan), 2);
	assert_set(&r.plan, plan_set_of_node(&r.plan, 0), 0, BIND, NODES(0));
	assert_set(&r.plan, plan_set_of_node(&r.plan, 1), 1, BIND, NODES(1));
	assert_int_equal(r.log.count, 0);
}

static void bind_unlisted_node_cpus_use_nearest_listed_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:0,2"));
	assert_cpus_use(&r.plan, 0, 7, 0);
	assert_cpus_use(&r.plan, 8, 15, 2);
}

static void bind_single_node_serves_every_cpu(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:3"));
	assert_int_equal(plan_node_sets(&r.plan), 1);
	assert_set(&r.plan, 0, 3, BIND, NODES(3));
	assert_cpus_use(&r.plan, 0, 15, 3);
}

static void bind_inversion_is_relative_to_allowed_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:!0"));
	assert_int_equal(r.plan.nodes, NODES(1, 2));
	assert_int_equal(r.log.count, 0);
}

static void bind_outside_cpuset_warns_once_and_narrows(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:2-3"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", NULL);
	assert_string_equal(r.log.w[0].fallback, "2");
	assert_int_equal(r.plan.nodes, NODES(2));
	assert_set(&r.plan, 0, 2, BIND, NODES(2));
}

static void bind_only_outside_cpuset_warns_once_uses_allowed(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:3"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", NULL);
	assert_int_equal(r.plan.nodes, NODES(0, 1, 2));
	assert_int_equal(plan_node_sets(&r.plan), 3);
	for (int s = 0; s < 3; s++)
		assert_int_equal(r.plan.set[s].mpol, BIND);
}

static void bind_missing_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:1,7"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", NULL);
	assert_int_equal(r.plan.nodes, NODES(1));
}

static void bind_memoryless_node_warns_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:2"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", NULL);
	assert_int_equal(r.plan.nodes, NODES(0, 1));
}

/* The warning quotes what NUMASHIM_POLICY held, as for preferred:N. */
static void bind_warning_quotes_the_variable_value(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:2-3"));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", "bind:2-3");
}

/* Consistent with preferred:N outside NUMASHIM_NODES, which is reported. */
static void bind_nodes_outside_nodes_env_warn_once(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:1-2",
				"NUMASHIM_NODES=0-1"));
	assert_int_equal(r.plan.nodes, NODES(1));
	assert_one_warning(&r.log, "NUMASHIM_POLICY", NULL);
}

static void bind_missing_node_on_one_node_machine_warns(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:1"));
	assert_false(r.plan.active);
	assert_one_warning(&r.log, "NUMASHIM_POLICY", NULL);
}

/* ------------------------------------------------------ emulated nodes */

static void fake_nodes_make_one_real_node_active(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	resolve_env(&r, &t, ENV(NULL));
	assert_true(r.plan.active);
	assert_int_equal(plan_node_sets(&r.plan), 4);
	for (int n = 0; n < 4; n++) {
		assert_set(&r.plan, plan_set_of_node(&r.plan, n), n, PREF,
			   NODES(0));
		assert_cpus_use(&r.plan, n, n, n);
	}
}

static void fake_sets_point_at_real_memory_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	assert_int_equal(policy_topology_fake(&t, 4), 0);
	resolve_env(&r, &t, ENV(NULL));
	for (int n = 0; n < 4; n++)
		assert_set(&r.plan, plan_set_of_node(&r.plan, n), n, PREF,
			   NODES(n % 2));
}

static void fake_interleave_on_one_real_node_is_active(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	assert_int_equal(policy_topology_fake(&t, 2), 0);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_true(r.plan.active);
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0));
}

/* ------------------------------------------------------ every plan */

static void (*const machines[])(struct policy_topology *) = {
	faketopo_single, faketopo_two, faketopo_four, faketopo_eight,
	faketopo_memoryless, faketopo_memonly, faketopo_cpuset,
};
static const char *const machine_names[] = {
	"single", "two", "four", "eight", "memoryless", "memonly", "cpuset",
};

static const char *const policies[] = {
	"NUMASHIM_POLICY=local", "NUMASHIM_POLICY=interleave",
	"NUMASHIM_POLICY=off", "NUMASHIM_POLICY=preferred:0",
	"NUMASHIM_POLICY=preferred:1", "NUMASHIM_POLICY=preferred:2",
	"NUMASHIM_POLICY=preferred:3", "NUMASHIM_POLICY=preferred:9",
	"NUMASHIM_POLICY=bind:0", "NUMASHIM_POLICY=bind:1-2",
	"NUMASHIM_POLICY=bind:2-3", "NUMASHIM_POLICY=bind:!0",
	"NUMASHIM_POLICY=bind:+1", "NUMASHIM_POLICY=bind:5-7",
};

static const char *const nodes[] = {
	"NUMASHIM_NODES=all", "NUMASHIM_NODES=0", "NUMASHIM_NODES=1-3",
	"NUMASHIM_NODES=!1", "NUMASHIM_NODES=+1", "NUMASHIM_NODES=9",
};

/* Calls check for every machine x policy x nodes x strict x fake nodes. */
static void sweep(void (*check)(const struct resolved *r,
				const struct policy_topology *t))
{
	int cases = 0;

	unit_quiet = true;
	for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++)
	for (int fake = 0; fake <= 3; fake++)
	for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++)
	for (size_t n = 0; n <= sizeof(nodes) / sizeof(nodes[0]); n++)
	for (int strict = 0; strict <= 1; strict++) {
		struct policy_topology t;
		struct resolved r;

		machines[m](&t);
		if (fake && policy_topology_fake(&t, fake))
			continue;
		snprintf(unit_case, sizeof(unit_case),
			 "%s machine, fake %d: %s %s strict=%d",
			 machine_names[m], fake, policies[p],
			 n < sizeof(nodes) / sizeof(nodes[0]) ? nodes[n] : "",
			 strict);
		resolve_env(&r, &t, ENV((char *)policies[p],
			strict ? "NUMASHIM_STRICT=1" : "NUMASHIM_STRICT=0",
			n < sizeof(nodes) / sizeof(nodes[0]) ? (char *)nodes[n]
							     : NULL));
		check(&r, &t);
		cases++;
	}
	unit_case[0] = '\0';
	print_message("%d cases\n", cases);
	assert_true(cases > 4000);
	unit_quiet = false;
}

static void check_usable(const struct resolved *r,
			 const struct policy_topology *t)
{
	/* resolve_env already asserted the plan invariants. At most one
	 * warning per variable that was set. */
	assert_in_range(r->log.count, 0, 2);
}

static void every_plan_is_usable(void **state)
{
	sweep(check_usable);
}

/* Per-node sets are preferred (bind when strict, always for bind); sets
 * without a home node are interleaved. */
static void check_mpol(const struct resolved *r,
		       const struct policy_topology *t)
{
	for (int s = 0; s < r->plan.nr_sets; s++) {
		enum policy_mpol m = r->plan.set[s].mpol;

		if (r->plan.set[s].node < 0)
			assert_int_equal(m, INTERLEAVE);
		else if (r->plan.mode == POLICY_BIND || r->cfg.strict)
			assert_int_equal(m, BIND);
		else
			assert_int_equal(m, PREF);
	}
	if (r->plan.active && r->plan.mode == POLICY_INTERLEAVE)
		assert_int_equal(plan_node_sets(&r->plan), 0);
}

static void every_plan_places_memory_as_its_mode_says(void **state)
{
	sweep(check_mpol);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(preferred_has_one_set_for_every_cpu),
		cmocka_unit_test(preferred_strict_uses_mpol_bind),
		cmocka_unit_test(preferred_memory_only_node_serves_every_cpu),
		cmocka_unit_test(preferred_missing_node_warns_once_falls_back_to_local),
		cmocka_unit_test(preferred_memoryless_node_warns_once),
		cmocka_unit_test(preferred_node_outside_cpuset_warns_once),
		cmocka_unit_test(preferred_node_outside_nodes_env_warns_once),
		cmocka_unit_test(preferred_two_digit_node_is_named),
		cmocka_unit_test(preferred_missing_node_on_one_node_machine_warns),
		cmocka_unit_test(interleave_has_one_set_over_every_node),
		cmocka_unit_test(interleave_ignores_strict),
		cmocka_unit_test(interleave_skips_memoryless_node),
		cmocka_unit_test(interleave_skips_node_outside_cpuset),
		cmocka_unit_test(interleave_includes_memory_only_node),
		cmocka_unit_test(interleave_over_nodes_env),
		cmocka_unit_test(interleave_over_one_node_prefers_it),
		cmocka_unit_test(strict_comes_from_the_option_or_bind),
		cmocka_unit_test(bind_relative_past_the_allowed_nodes_warns),
		cmocka_unit_test(bind_has_a_bind_set_per_listed_node),
		cmocka_unit_test(bind_unlisted_node_cpus_use_nearest_listed_node),
		cmocka_unit_test(bind_single_node_serves_every_cpu),
		cmocka_unit_test(bind_inversion_is_relative_to_allowed_nodes),
		cmocka_unit_test(bind_outside_cpuset_warns_once_and_narrows),
		cmocka_unit_test(bind_only_outside_cpuset_warns_once_uses_allowed),
		cmocka_unit_test(bind_missing_node_warns_once),
		cmocka_unit_test(bind_memoryless_node_warns_once),
		cmocka_unit_test(bind_warning_quotes_the_variable_value),
		cmocka_unit_test(bind_nodes_outside_nodes_env_warn_once),
		cmocka_unit_test(bind_missing_node_on_one_node_machine_warns),
		cmocka_unit_test(fake_nodes_make_one_real_node_active),
		cmocka_unit_test(fake_sets_point_at_real_memory_nodes),
		cmocka_unit_test(fake_interleave_on_one_real_node_is_active),
		cmocka_unit_test_teardown(every_plan_is_usable, unit_print_case),
		cmocka_unit_test_teardown(every_plan_places_memory_as_its_mode_says,
					  unit_print_case),
	};

	return cmocka_run_group_tests_name("policy/plan.c: modes", tests, NULL,
					   NULL);
}
