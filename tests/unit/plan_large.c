/*
 * policy/plan.c, part 3: the large-block set (NUMASHIM_INTERLEAVE_MIN) and
 * the mmap/thread choices the plan carries; the set's nodes and weights
 * (NUMASHIM_INTERLEAVE_NODES, _INTERLEAVE_WEIGHTS) are in plan_large_nodes.c. The set is the plan's last, interleaved over the real nodes
 * behind the interleave nodes, and no CPU uses it: it only serves blocks of
 * at least large_min bytes. assert_plan_usable (unit.c) checks its
 * invariants on every plan resolved here and in plan.c/plan_modes.c.
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

#define INTERLEAVE POLICY_MPOL_INTERLEAVE
#define PREFERRED POLICY_MPOL_PREFERRED
#define BIND POLICY_MPOL_BIND

/* ------------------------------------------------------ the set exists */

static void local_large_set_is_the_last_set_over_every_node(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(r.plan.nr_sets, 3);
	assert_int_equal(plan_node_sets(&r.plan), 2);
	assert_large_set(&r, NODES(0, 1));
	assert_int_equal(r.plan.large_min, POLICY_INTERLEAVE_MIN_DEFAULT);
	assert_false(r.plan.weighted);
	assert_weights(&r, 1, 1, 0, 0);
	assert_int_equal(r.log.count, 0);
}

static void every_placing_mode_has_a_large_set(void **state)
{
	static const char *const modes[] = {
		"NUMASHIM_POLICY=local", "NUMASHIM_POLICY=bind:0-1",
		"NUMASHIM_POLICY=interleave",
	};
	void (*const make[])(struct policy_topology *) = {
		faketopo_two, faketopo_four,
	};

	for (size_t m = 0; m < 2; m++)
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
	for (int strict = 0; strict <= 1; strict++) {
		struct policy_topology t;
		struct resolved r;

		make[m](&t);
		snprintf(unit_case, sizeof(unit_case), "%s nodes: %s strict=%d",
			 m ? "4" : "2", modes[i], strict);
		resolve_env(&r, &t, ENV((char *)modes[i], strict
			? "NUMASHIM_STRICT=1" : "NUMASHIM_STRICT=0"));
		assert_true(r.plan.active);
		assert_int_equal(r.plan.large_set, r.plan.nr_sets - 1);
		assert_int_equal(r.plan.set[r.plan.large_set].mpol, INTERLEAVE);
		assert_int_equal(r.plan.large_min, POLICY_INTERLEAVE_MIN_DEFAULT);
		assert_int_equal(r.log.count, 0);
	}
	unit_case[0] = '\0';
}

/* preferred:N puts all heap memory on N, and bind:N only allows N: with
 * one node there is nothing to interleave, large blocks stay on it. */
static void one_node_plans_keep_large_blocks_on_their_node(void **state)
{
	static const char *const modes[] = {
		"NUMASHIM_POLICY=preferred:1", "NUMASHIM_POLICY=bind:1",
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct policy_topology t;
		struct resolved r;

		faketopo_four(&t);
		resolve_env(&r, &t, ENV((char *)modes[i]));
		assert_true(r.plan.active);
		assert_int_equal(r.plan.large_set, -1);
		assert_int_equal(plan_node_sets(&r.plan), 1);
		assert_int_equal(r.log.count, 0);
	}
}

static void interleave_mode_large_set_follows_the_heap_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_int_equal(r.plan.nr_sets, 2);
	assert_set(&r.plan, 0, -1, INTERLEAVE, NODES(0, 1, 2, 3));
	assert_large_set(&r, NODES(0, 1, 2, 3));
}

static void interleave_min_off_makes_no_large_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=off"));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.large_set, -1);
	assert_int_equal(r.plan.nr_sets, 4);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=off",
				"NUMASHIM_POLICY=interleave"));
	assert_int_equal(r.plan.large_set, -1);
	assert_int_equal(r.plan.nr_sets, 1);
}

static void passthrough_has_no_large_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_single(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_false(r.plan.active);
	assert_int_equal(r.plan.large_set, -1);
	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=off"));
	assert_int_equal(r.plan.large_set, -1);
	/* Interleave over one node is that node, preferred: large blocks
	 * follow it without a set of their own. */
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave", "NUMASHIM_NODES=1"));
	assert_true(r.plan.active);
	assert_int_equal(r.plan.large_set, -1);
}

static void large_min_is_the_interleave_min(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=1G"));
	assert_int_equal(r.plan.large_min, (size_t)1 << 30);
	resolve_env(&r, &t, ENV("NUMASHIM_INTERLEAVE_MIN=4K"));
	assert_int_equal(r.plan.large_min, 4096);
}

/* The large set is only for large blocks: no thread's small blocks. */
static void no_cpu_uses_the_large_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=interleave"));
	assert_int_equal(r.plan.set[0].cpus, 16);
	assert_int_equal(r.plan.set[1].cpus, 0);
	assert_int_equal(r.plan.default_set, 0);
	for (int c = 0; c < 16; c++)
		assert_int_equal(policy_set_for_cpu(&r.plan, c), 0);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=preferred:2"));
	assert_int_equal(r.plan.set[0].cpus, 16);
	assert_int_equal(r.plan.set[1].cpus, 0);
	assert_cpus_use(&r.plan, 0, 15, 2);
}

static void large_set_skips_nodes_without_usable_memory(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_memoryless(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_large_set(&r, NODES(0, 1));
	faketopo_cpuset(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_large_set(&r, NODES(0, 1, 2));
	faketopo_memonly(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_large_set(&r, NODES(0, 1, 2));
	assert_int_equal(r.log.count, 0);
}

static void large_set_fits_in_the_set_table_on_64_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_empty(&t);
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		faketopo_add_node(&t, n, n, n, true);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(r.plan.nr_sets, POLICY_MAX_SETS);
	assert_large_set(&r, ~(policy_nodemask_t)0);
	assert_cpus_use(&r.plan, 63, 63, 63);
}

/* NUMASHIM_POLICY=bind:NODES is strict: large blocks too stay on NODES. */
static void bind_large_set_stays_on_the_bound_nodes(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_POLICY=bind:0-1"));
	assert_large_set(&r, NODES(0, 1));
}

/* NUMASHIM_NODES restricts every node numashim places memory on. */
static void nodes_env_limits_the_large_set(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_four(&t);
	resolve_env(&r, &t, ENV("NUMASHIM_NODES=0-1"));
	assert_large_set(&r, NODES(0, 1));
}

/* ------------------------------------------------------ mmap, threads */

static void mmap_and_threads_choices_reach_the_plan(void **state)
{
	struct policy_topology t;
	struct resolved r;

	faketopo_two(&t);
	resolve_env(&r, &t, ENV(NULL));
	assert_int_equal(r.plan.mmap, POLICY_MMAP_INTERLEAVE);
	assert_int_equal(r.plan.threads, POLICY_THREADS_NONE);
	resolve_env(&r, &t, ENV("NUMASHIM_MMAP=local",
				"NUMASHIM_THREADS=compact"));
	assert_int_equal(r.plan.mmap, POLICY_MMAP_LOCAL);
	assert_int_equal(r.plan.threads, POLICY_THREADS_COMPACT);
	resolve_env(&r, &t, ENV("NUMASHIM_MMAP=off", "NUMASHIM_THREADS=spread"));
	assert_int_equal(r.plan.mmap, POLICY_MMAP_OFF);
	assert_int_equal(r.plan.threads, POLICY_THREADS_SPREAD);
}

/* ------------------------------------------------------ every plan */

static void every_large_set_is_usable(void **state)
{
	void (*const make[])(struct policy_topology *) = {
		faketopo_single, faketopo_two, faketopo_four, faketopo_eight,
		faketopo_memoryless, faketopo_memonly, faketopo_cpuset,
	};
	static char *const policies[] = {
		"NUMASHIM_POLICY=local", "NUMASHIM_POLICY=interleave",
		"NUMASHIM_POLICY=preferred:1", "NUMASHIM_POLICY=bind:1-2",
		"NUMASHIM_POLICY=off",
	};
	static char *const mins[] = {
		"NUMASHIM_INTERLEAVE_MIN=64M", "NUMASHIM_INTERLEAVE_MIN=off",
	};
	static char *const il[] = {
		"NUMASHIM_INTERLEAVE_NODES=all", "NUMASHIM_INTERLEAVE_NODES=1-2",
		"NUMASHIM_INTERLEAVE_NODES=!0", "NUMASHIM_INTERLEAVE_NODES=+1",
		"NUMASHIM_INTERLEAVE_NODES=5", "NUMASHIM_INTERLEAVE_NODES=2-3",
	};
	static char *const weights[] = {
		"NUMASHIM_INTERLEAVE_WEIGHTS=equal",
		"NUMASHIM_INTERLEAVE_WEIGHTS=0:3,1:1",
		"NUMASHIM_INTERLEAVE_WEIGHTS=1:1,2:1,3:2",
		"NUMASHIM_INTERLEAVE_WEIGHTS=2:100",
		"NUMASHIM_INTERLEAVE_WEIGHTS=0:1,9:1",
	};
#define N(a) (sizeof(a) / sizeof(a[0]))
	int cases = 0;

	unit_quiet = true;
	for (size_t m = 0; m < N(make); m++)
	for (int fake = 0; fake <= 4; fake++)
	for (size_t p = 0; p < N(policies); p++)
	for (size_t x = 0; x < N(mins); x++)
	for (size_t i = 0; i < N(il); i++)
	for (size_t w = 0; w < N(weights); w++) {
		struct policy_topology t;
		struct resolved r;
		int per_var[3] = { 0 };

		make[m](&t);
		if (fake && policy_topology_fake(&t, fake))
			continue;
		snprintf(unit_case, sizeof(unit_case), "machine %zu fake %d: "
			 "%s %s %s %s", m, fake, policies[p], mins[x], il[i],
			 weights[w]);
		resolve_env(&r, &t, ENV(policies[p], mins[x], il[i],
					weights[w]));
		/* A large set only in an active plan with a threshold, over
		 * nodes with memory this process may use (every case names
		 * its nodes, so one is enough). */
		if (r.plan.large_set >= 0) {
			policy_nodemask_t mask = r.plan.set[r.plan.large_set].mask;

			assert_true(r.plan.active && x == 0);
			assert_true(mask != 0);
			if (!t.fake)
				assert_true((mask & ~(t.online & t.has_memory &
						      t.allowed)) == 0);
		}
		for (int k = 0; k < r.log.count; k++) {
			assert_in_range(k, 0, UNIT_MAX_WARNINGS - 1);
			per_var[strcmp(r.log.w[k].var, "NUMASHIM_POLICY") == 0 ? 0
				: strcmp(r.log.w[k].var,
					 "NUMASHIM_INTERLEAVE_NODES") == 0 ? 1
				: 2]++;
		}
		for (int v = 0; v < 3; v++)
			assert_in_range(per_var[v], 0, 1);
		cases++;
	}
#undef N
	unit_case[0] = '\0';
	unit_quiet = false;
	print_message("%d cases\n", cases);
	assert_true(cases > 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(local_large_set_is_the_last_set_over_every_node),
		cmocka_unit_test_teardown(every_placing_mode_has_a_large_set,
					  unit_print_case),
		cmocka_unit_test(one_node_plans_keep_large_blocks_on_their_node),
		cmocka_unit_test(interleave_mode_large_set_follows_the_heap_set),
		cmocka_unit_test(interleave_min_off_makes_no_large_set),
		cmocka_unit_test(passthrough_has_no_large_set),
		cmocka_unit_test(large_min_is_the_interleave_min),
		cmocka_unit_test(no_cpu_uses_the_large_set),
		cmocka_unit_test(large_set_skips_nodes_without_usable_memory),
		cmocka_unit_test(large_set_fits_in_the_set_table_on_64_nodes),
		cmocka_unit_test(bind_large_set_stays_on_the_bound_nodes),
		cmocka_unit_test(nodes_env_limits_the_large_set),
		cmocka_unit_test(mmap_and_threads_choices_reach_the_plan),
		cmocka_unit_test_teardown(every_large_set_is_usable,
					  unit_print_case),
	};

	return cmocka_run_group_tests_name("policy/plan.c: large blocks", tests,
					   NULL, NULL);
}
