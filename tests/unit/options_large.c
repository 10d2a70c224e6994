/*
 * policy/options.c, part 2: the large-block, mmap and thread options
 * (NUMASHIM_INTERLEAVE_MIN, _INTERLEAVE_NODES, _INTERLEAVE_WEIGHTS,
 * NUMASHIM_MMAP, NUMASHIM_THREADS). options.c covers the table, the other
 * options and the environment; the same rules hold: a bad value gives one
 * warning naming the variable and the value, the option's default text as
 * the fallback, and leaves the config as the default.
 */
#include "tests/unit/unit.h"

#include <string.h>

#define ALL (~(policy_nodemask_t)0)

/* ------------------------------------------------------ NUMASHIM_INTERLEAVE_MIN */

static void interleave_min_accepts_sizes_and_off(void **state)
{
	static const struct { const char *v; size_t n; } ok[] = {
		{ "4096", 4096 }, { "4K", 4096 }, { "3M", (size_t)3 << 20 },
		{ "64M", POLICY_INTERLEAVE_MIN_DEFAULT }, { "1G", (size_t)1 << 30 },
		{ "1GiB", (size_t)1 << 30 }, { "2T", (size_t)2 << 40 },
		{ "off", 0 },
	};
	struct policy_config cfg;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		option_good("NUMASHIM_INTERLEAVE_MIN", ok[i].v, &cfg);
		assert_int_equal(cfg.interleave_min, ok[i].n);
	}
}

static void interleave_min_below_a_page_is_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_MIN", "0");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "1");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "4095");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "3K");
}

static void interleave_min_non_size_is_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_MIN", "12Q");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "64 M");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "-1");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "M");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "OFF");
	option_bad("NUMASHIM_INTERLEAVE_MIN", "no");
	/* Too large is said so, not "not a size". */
	option_bad_why("NUMASHIM_INTERLEAVE_MIN", "99999999999999999999",
		       "larger than 16E (2^64 - 1 bytes)");
	option_bad_why("NUMASHIM_INTERLEAVE_MIN", "16777216T",
		       "larger than 16E (2^64 - 1 bytes)");
	option_bad_why("NUMASHIM_INTERLEAVE_MIN", "12Q",
		       "not a size (e.g. 64M, 1G) or off");
}

/* ------------------------------------------------------ NUMASHIM_INTERLEAVE_NODES */

static void interleave_nodes_accepts_numactl_lists(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_INTERLEAVE_NODES", "0-1,3", &cfg);
	assert_int_equal(cfg.interleave_nodes, NODES(0, 1, 3));
	assert_string_equal(cfg.interleave_nodes_text, "0-1,3");
	option_good("NUMASHIM_INTERLEAVE_NODES", "!1", &cfg);
	assert_int_equal(cfg.interleave_nodes, ALL & ~NODES(1));
	assert_string_equal(cfg.interleave_nodes_text, "!1");
	option_good("NUMASHIM_INTERLEAVE_NODES", "+0-1", &cfg);
	assert_string_equal(cfg.interleave_nodes_text, "+0-1");
	option_good("NUMASHIM_INTERLEAVE_NODES", "all", &cfg);
	assert_int_equal(cfg.interleave_nodes, ALL);
	/* NUMASHIM_NODES is a different variable. */
	assert_int_equal(cfg.nodes, ALL);
	assert_null(cfg.nodes_text);
}

static void interleave_nodes_bad_list_is_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_NODES", "x");
	option_bad("NUMASHIM_INTERLEAVE_NODES", "0,");
	option_bad("NUMASHIM_INTERLEAVE_NODES", "3-1");
	option_bad("NUMASHIM_INTERLEAVE_NODES", "64");
	option_bad("NUMASHIM_INTERLEAVE_NODES", "0-99");
	option_bad("NUMASHIM_INTERLEAVE_NODES", "!all");
}

/* ------------------------------------------------------ NUMASHIM_INTERLEAVE_WEIGHTS */

static void weights_accepts_node_weight_pairs(void **state)
{
	static const struct { const char *v; int node[3], w[3]; } ok[] = {
		{ "0:3,1:1", { 0, 1, -1 }, { 3, 1 } },
		{ "1:100", { 1, -1 }, { 100 } },
		{ "63:1", { 63, -1 }, { 1 } },
		{ "2:5,0:1,1:07", { 2, 0, 1 }, { 5, 1, 7 } },
	};
	struct policy_config cfg;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint8_t want[POLICY_MAX_NODES] = { 0 };

		for (int j = 0; j < 3 && ok[i].node[j] >= 0; j++)
			want[ok[i].node[j]] = (uint8_t)ok[i].w[j];
		option_good("NUMASHIM_INTERLEAVE_WEIGHTS", ok[i].v, &cfg);
		assert_memory_equal(cfg.weight, want, sizeof(want));
		assert_string_equal(cfg.weights_text, ok[i].v);
	}
}

static void weights_equal_means_no_weights(void **state)
{
	char *envp[] = { "NUMASHIM_INTERLEAVE_WEIGHTS=0:3,1:1",
			 "NUMASHIM_INTERLEAVE_WEIGHTS=equal", NULL };
	struct policy_config cfg;

	config_from(&cfg, envp);
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		assert_int_equal(cfg.weight[n], 0);
	assert_null(cfg.weights_text);
}

static void weights_bad_pairs_are_reported(void **state)
{
	static const char *const no[] = {
		"0", "0:", ":1", "1", "a:1", "0:x", "0:-1", "0:+1", "Equal",
		"0:3;1:1", "0:3,,1:1", "0:3 ,1:1", " 0:3", ",0:1", "0:3:1",
		"0-1:3", "all:1",
	};

	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", no[i]);
}

static void weights_outside_1_to_100_are_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:0");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,1:0");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:101");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:1000");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:256");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:99999999999999999999");
}

static void weights_node_out_of_range_is_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "64:1");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,640:1");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "99999999999999999999:1");
}

static void weights_duplicate_node_is_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,0:2");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:1,1:1,00:1");
}

/* Like "0," in a node list (NUMASHIM_NODES, bind:). */
static void weights_trailing_comma_is_reported(void **state)
{
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:3,");
	option_bad("NUMASHIM_INTERLEAVE_WEIGHTS", "0:3,1:1,");
}

/* ------------------------------------------------------ NUMASHIM_MMAP, _THREADS */

static void mmap_accepts_each_word(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_MMAP", "local", &cfg);
	assert_int_equal(cfg.mmap, POLICY_MMAP_LOCAL);
	option_good("NUMASHIM_MMAP", "off", &cfg);
	assert_int_equal(cfg.mmap, POLICY_MMAP_OFF);
	option_good("NUMASHIM_MMAP", "interleave", &cfg);
	assert_int_equal(cfg.mmap, POLICY_MMAP_INTERLEAVE);
}

static void mmap_unknown_word_is_reported(void **state)
{
	option_bad("NUMASHIM_MMAP", "on");
	option_bad("NUMASHIM_MMAP", "none");
	option_bad("NUMASHIM_MMAP", "INTERLEAVE");
	option_bad("NUMASHIM_MMAP", "local ");
	option_bad("NUMASHIM_MMAP", "interleave:0-1");
	option_bad("NUMASHIM_MMAP", "0");
}

static void threads_accepts_each_word(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_THREADS", "spread", &cfg);
	assert_int_equal(cfg.threads, POLICY_THREADS_SPREAD);
	option_good("NUMASHIM_THREADS", "compact", &cfg);
	assert_int_equal(cfg.threads, POLICY_THREADS_COMPACT);
	option_good("NUMASHIM_THREADS", "none", &cfg);
	assert_int_equal(cfg.threads, POLICY_THREADS_NONE);
}

static void threads_unknown_word_is_reported(void **state)
{
	option_bad("NUMASHIM_THREADS", "off");
	option_bad("NUMASHIM_THREADS", "Spread");
	option_bad("NUMASHIM_THREADS", "round-robin");
	option_bad("NUMASHIM_THREADS", "compact ");
	option_bad("NUMASHIM_THREADS", "1");
}

/* ------------------------------------------------ NUMASHIM_ARENAS_PER_CPU */

static void arenas_per_cpu_default_is_one(void **state)
{
	struct policy_config cfg;

	policy_config_default(&cfg);
	assert_int_equal(cfg.arenas_per_cpu, 1);
	option_good("NUMASHIM_ARENAS_PER_CPU", "4", &cfg);
	assert_int_equal(cfg.arenas_per_cpu, 4);
	option_good("NUMASHIM_ARENAS_PER_CPU", "16", &cfg);
	assert_int_equal(cfg.arenas_per_cpu, 16);
}

static void arenas_per_cpu_out_of_range_is_reported(void **state)
{
	option_bad("NUMASHIM_ARENAS_PER_CPU", "0");
	option_bad("NUMASHIM_ARENAS_PER_CPU", "17");
	option_bad("NUMASHIM_ARENAS_PER_CPU", "-1");
	option_bad("NUMASHIM_ARENAS_PER_CPU", "2.5");
	option_bad("NUMASHIM_ARENAS_PER_CPU", "");
	option_bad("NUMASHIM_ARENAS_PER_CPU", "99999999999999999999");
}

/* ------------------------------------------------------ NUMASHIM_STATS */

static void stats_accepts_booleans(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_STATS", "off", &cfg);
	assert_false(cfg.stats);
	option_good("NUMASHIM_STATS", "0", &cfg);
	assert_false(cfg.stats);
	option_good("NUMASHIM_STATS", "on", &cfg);
	assert_true(cfg.stats);
	option_good("NUMASHIM_STATS", "yes", &cfg);
	assert_true(cfg.stats);
	assert_false(cfg.stats_inline);
}

static void stats_inline_keeps_the_segment(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_STATS", "inline", &cfg);
	assert_true(cfg.stats);
	assert_true(cfg.stats_inline);
	option_good("NUMASHIM_STATS", "INLINE", &cfg);
	assert_true(cfg.stats_inline);
}

static void stats_unknown_word_is_reported(void **state)
{
	option_bad("NUMASHIM_STATS", "enabled");
	option_bad("NUMASHIM_STATS", "");
	option_bad("NUMASHIM_STATS", "2");
	option_bad("NUMASHIM_STATS", "off ");
}

/* ------------------------------------------------------ together */

static void large_block_values_combine(void **state)
{
	char *envp[] = { "NUMASHIM_INTERLEAVE_MIN=1G",
			 "NUMASHIM_INTERLEAVE_NODES=0-2",
			 "NUMASHIM_INTERLEAVE_WEIGHTS=0:2,2:1",
			 "NUMASHIM_MMAP=local", "NUMASHIM_THREADS=compact",
			 "NUMASHIM_POLICY=interleave", NULL };
	struct policy_config cfg;

	config_from(&cfg, envp);
	assert_int_equal(cfg.interleave_min, (size_t)1 << 30);
	assert_int_equal(cfg.interleave_nodes, NODES(0, 1, 2));
	assert_int_equal(cfg.weight[0], 2);
	assert_int_equal(cfg.weight[1], 0);
	assert_int_equal(cfg.weight[2], 1);
	assert_int_equal(cfg.mmap, POLICY_MMAP_LOCAL);
	assert_int_equal(cfg.threads, POLICY_THREADS_COMPACT);
	assert_int_equal(cfg.mode, POLICY_INTERLEAVE);
	assert_int_equal(cfg.nodes, ALL);
}

/* A bad weight list must not leave half of its pairs behind. */
static void bad_weights_leave_earlier_weights_alone(void **state)
{
	char *envp[] = { "NUMASHIM_INTERLEAVE_WEIGHTS=0:3,1:1",
			 "NUMASHIM_INTERLEAVE_WEIGHTS=2:5,0:0", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, &cfg, warnlog_fn, &log), 1);
	assert_one_warning(&log, "NUMASHIM_INTERLEAVE_WEIGHTS", "2:5,0:0");
	assert_int_equal(cfg.weight[0], 3);
	assert_int_equal(cfg.weight[1], 1);
	assert_int_equal(cfg.weight[2], 0);
	assert_string_equal(cfg.weights_text, "0:3,1:1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(interleave_min_accepts_sizes_and_off),
		cmocka_unit_test(interleave_min_below_a_page_is_reported),
		cmocka_unit_test(interleave_min_non_size_is_reported),
		cmocka_unit_test(interleave_nodes_accepts_numactl_lists),
		cmocka_unit_test(interleave_nodes_bad_list_is_reported),
		cmocka_unit_test(weights_accepts_node_weight_pairs),
		cmocka_unit_test(weights_equal_means_no_weights),
		cmocka_unit_test(weights_bad_pairs_are_reported),
		cmocka_unit_test(weights_outside_1_to_100_are_reported),
		cmocka_unit_test(weights_node_out_of_range_is_reported),
		cmocka_unit_test(weights_duplicate_node_is_reported),
		cmocka_unit_test(weights_trailing_comma_is_reported),
		cmocka_unit_test(mmap_accepts_each_word),
		cmocka_unit_test(mmap_unknown_word_is_reported),
		cmocka_unit_test(threads_accepts_each_word),
		cmocka_unit_test(threads_unknown_word_is_reported),
		cmocka_unit_test(arenas_per_cpu_default_is_one),
		cmocka_unit_test(arenas_per_cpu_out_of_range_is_reported),
		cmocka_unit_test(stats_accepts_booleans),
		cmocka_unit_test(stats_inline_keeps_the_segment),
		cmocka_unit_test(stats_unknown_word_is_reported),
		cmocka_unit_test(large_block_values_combine),
		cmocka_unit_test(bad_weights_leave_earlier_weights_alone),
	};

	return cmocka_run_group_tests_name("policy/options.c: large blocks",
					   tests, NULL, NULL);
}
