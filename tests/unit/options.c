/*
 * policy/options.c: the option table and policy_config_from_env.
 * Every bad value must give exactly one warning that names the variable and
 * the value, offers the option's default as the fallback, and leave the
 * config as the default.
 */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

#define ALL (~(policy_nodemask_t)0)

/* ------------------------------------------------------ the table */

static void default_config_is_local_on_all_nodes(void **state)
{
	struct policy_config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	policy_config_default(&cfg);
	assert_config_default(&cfg);
}

static void empty_environment_gives_defaults(void **state)
{
	char *envp[] = { NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, &cfg, warnlog_fn, &log), 0);
	assert_config_default(&cfg);
	assert_int_equal(policy_config_from_env(NULL, &cfg, warnlog_fn, &log), 0);
	assert_config_default(&cfg);
	assert_int_equal(log.count, 0);
}

static void every_option_is_documented(void **state)
{
	assert_true(policy_option_count > 0);
	for (size_t i = 0; i < policy_option_count; i++) {
		const struct policy_option *o = &policy_options[i];

		assert_int_equal(strncmp(o->name, "NUMASHIM_", 9), 0);
		assert_true(o->def && o->values && o->help && o->parse);
		assert_true(o->values[0] && o->help[0]);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(o->name, policy_options[j].name);
	}
}

/* A new option must come with tests here or in options_large.c: this list
 * is the tests' view of the table. */
static void every_option_has_tests_here(void **state)
{
	static const char *const tested[] = {
		"NUMASHIM_POLICY", "NUMASHIM_NODES", "NUMASHIM_STRICT",
		"NUMASHIM_VERBOSE", "NUMASHIM_INTERLEAVE_MIN",
		"NUMASHIM_INTERLEAVE_NODES", "NUMASHIM_INTERLEAVE_WEIGHTS",
		"NUMASHIM_MMAP", "NUMASHIM_THREADS", "NUMASHIM_ARENAS_PER_CPU",
		"NUMASHIM_STATS", "NUMASHIM_FAKE_NODES",
	};

	assert_int_equal(policy_option_count, sizeof(tested) / sizeof(tested[0]));
	for (size_t i = 0; i < policy_option_count; i++)
		assert_string_equal(policy_options[i].name, tested[i]);
}

/* The default text is what warnings say is used: it must mean the default. */
static void every_option_default_text_means_the_default(void **state)
{
	for (size_t i = 0; i < policy_option_count; i++) {
		struct policy_config cfg;

		print_message("%s\n", policy_options[i].name);
		option_good(policy_options[i].name, policy_options[i].def, &cfg);
		/* "all" is kept as text, to be re-read against the real
		 * allowed set; it still selects every node. */
		cfg.nodes_text = NULL;
		cfg.interleave_nodes_text = NULL;
		assert_config_default(&cfg);
	}
}

static void every_option_rejects_garbage(void **state)
{
	for (size_t i = 0; i < policy_option_count; i++)
		option_bad(policy_options[i].name, "@@garbage");
}

static void every_option_rejects_an_empty_value(void **state)
{
	for (size_t i = 0; i < policy_option_count; i++)
		option_bad(policy_options[i].name, "");
}

/* ------------------------------------------------------ NUMASHIM_POLICY */

static void policy_accepts_every_mode_word(void **state)
{
	static const struct { const char *v; enum policy_mode m; } ok[] = {
		{ "local", POLICY_LOCAL }, { "default", POLICY_LOCAL },
		{ "interleave", POLICY_INTERLEAVE }, { "off", POLICY_OFF },
		{ "none", POLICY_OFF },
	};
	struct policy_config cfg;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		option_good("NUMASHIM_POLICY", ok[i].v, &cfg);
		assert_int_equal(cfg.mode, ok[i].m);
	}
}

static void policy_preferred_sets_the_node(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_POLICY", "preferred:3", &cfg);
	assert_int_equal(cfg.mode, POLICY_PREFERRED);
	assert_int_equal(cfg.preferred_node, 3);
	option_good("NUMASHIM_POLICY", "preferred:63", &cfg);
	assert_int_equal(cfg.preferred_node, 63);
}

static void policy_bind_keeps_mask_and_text(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_POLICY", "bind:0-1,3", &cfg);
	assert_int_equal(cfg.mode, POLICY_BIND);
	assert_int_equal(cfg.bind_nodes, NODES(0, 1, 3));
	assert_string_equal(cfg.bind_text, "0-1,3");
	option_good("NUMASHIM_POLICY", "bind:!0", &cfg);
	assert_int_equal(cfg.bind_nodes, ALL & ~NODES(0));
	assert_string_equal(cfg.bind_text, "!0");
}

static void policy_unknown_mode_is_reported(void **state)
{
	option_bad("NUMASHIM_POLICY", "fast");
	option_bad("NUMASHIM_POLICY", "LOCAL");
	option_bad("NUMASHIM_POLICY", "local ");
	option_bad("NUMASHIM_POLICY", "interleave:0-1");
	option_bad("NUMASHIM_POLICY", "preferred");
	option_bad("NUMASHIM_POLICY", "bind");
}

static void policy_preferred_without_one_valid_node_is_reported(void **state)
{
	option_bad("NUMASHIM_POLICY", "preferred:");
	option_bad("NUMASHIM_POLICY", "preferred:x");
	option_bad("NUMASHIM_POLICY", "preferred:64");
	option_bad("NUMASHIM_POLICY", "preferred:-1");
	option_bad("NUMASHIM_POLICY", "preferred:1,2");
	option_bad("NUMASHIM_POLICY", "preferred:0-1");
}

static void policy_bind_without_a_valid_list_is_reported(void **state)
{
	option_bad("NUMASHIM_POLICY", "bind:");
	option_bad("NUMASHIM_POLICY", "bind:x");
	option_bad("NUMASHIM_POLICY", "bind:64");
	option_bad("NUMASHIM_POLICY", "bind:3-1");
	option_bad("NUMASHIM_POLICY", "bind:0,");
	option_bad("NUMASHIM_POLICY", "bind:!all");
}

/* ------------------------------------------------------ NUMASHIM_NODES */

static void nodes_accepts_numactl_lists(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_NODES", "0-1,3", &cfg);
	assert_int_equal(cfg.nodes, NODES(0, 1, 3));
	assert_string_equal(cfg.nodes_text, "0-1,3");
	option_good("NUMASHIM_NODES", "!1", &cfg);
	assert_int_equal(cfg.nodes, ALL & ~NODES(1));
	assert_string_equal(cfg.nodes_text, "!1");
	option_good("NUMASHIM_NODES", "+0", &cfg);
	assert_string_equal(cfg.nodes_text, "+0");
	option_good("NUMASHIM_NODES", "all", &cfg);
	assert_int_equal(cfg.nodes, ALL);
}

static void nodes_bad_list_is_reported(void **state)
{
	option_bad("NUMASHIM_NODES", "x");
	option_bad("NUMASHIM_NODES", "0,");
	option_bad("NUMASHIM_NODES", "3-1");
	option_bad("NUMASHIM_NODES", " 0");
}

static void nodes_out_of_range_is_reported(void **state)
{
	option_bad("NUMASHIM_NODES", "64");
	option_bad("NUMASHIM_NODES", "0-99");
}

static void nodes_selecting_nothing_is_reported(void **state)
{
	option_bad("NUMASHIM_NODES", "!all");
}

/* ------------------------------------------------------ NUMASHIM_STRICT */

static void strict_accepts_booleans(void **state)
{
	static const char *const yes[] = { "1", "yes", "true", "on", "ON", "Yes" };
	static const char *const no[] = { "0", "no", "false", "off", "OFF" };
	struct policy_config cfg;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		option_good("NUMASHIM_STRICT", yes[i], &cfg);
		assert_true(cfg.strict);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		option_good("NUMASHIM_STRICT", no[i], &cfg);
		assert_false(cfg.strict);
	}
}

static void strict_non_boolean_is_reported(void **state)
{
	option_bad("NUMASHIM_STRICT", "2");
	option_bad("NUMASHIM_STRICT", "maybe");
	option_bad("NUMASHIM_STRICT", "y");
	option_bad("NUMASHIM_STRICT", "1 ");
}

/* ------------------------------------------------------ NUMASHIM_VERBOSE */

static void verbose_accepts_levels_and_booleans(void **state)
{
	static const struct { const char *v; int level; } ok[] = {
		{ "0", 0 }, { "1", 1 }, { "2", 2 }, { "yes", 1 }, { "no", 0 },
		{ "on", 1 },
	};
	struct policy_config cfg;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		option_good("NUMASHIM_VERBOSE", ok[i].v, &cfg);
		assert_int_equal(cfg.verbose, ok[i].level);
	}
}

static void verbose_bad_level_is_reported(void **state)
{
	option_bad("NUMASHIM_VERBOSE", "3");
	option_bad("NUMASHIM_VERBOSE", "-1");
	option_bad("NUMASHIM_VERBOSE", "loud");
	option_bad("NUMASHIM_VERBOSE", "1x");
}

/* ------------------------------------------------------ NUMASHIM_FAKE_NODES */

static void fake_nodes_accepts_0_to_64(void **state)
{
	struct policy_config cfg;

	option_good("NUMASHIM_FAKE_NODES", "0", &cfg);
	assert_int_equal(cfg.fake_nodes, 0);
	option_good("NUMASHIM_FAKE_NODES", "4", &cfg);
	assert_int_equal(cfg.fake_nodes, 4);
	option_good("NUMASHIM_FAKE_NODES", "64", &cfg);
	assert_int_equal(cfg.fake_nodes, 64);
}

static void fake_nodes_bad_count_is_reported(void **state)
{
	option_bad("NUMASHIM_FAKE_NODES", "65");
	option_bad("NUMASHIM_FAKE_NODES", "-1");
	option_bad("NUMASHIM_FAKE_NODES", "four");
	option_bad("NUMASHIM_FAKE_NODES", "4x");
	option_bad("NUMASHIM_FAKE_NODES", "99999999999999999999");
}

/* ------------------------------------------------------ the environment */

static void unknown_numashim_variable_is_reported(void **state)
{
	char *envp[] = { "NUMASHIM_POLCY=interleave", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, &cfg, warnlog_fn, &log), 1);
	assert_one_warning(&log, "NUMASHIM_POLCY", "interleave");
	assert_config_default(&cfg);
}

static void unknown_long_variable_name_is_reported_cut(void **state)
{
	char name[200], entry[220];
	char *envp[] = { entry, NULL };
	struct policy_config cfg;
	struct warnlog log;

	memset(name, 'X', sizeof(name));
	memcpy(name, "NUMASHIM_", 9);
	name[sizeof(name) - 1] = '\0';
	snprintf(entry, sizeof(entry), "%s=1", name);
	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, &cfg, warnlog_fn, &log), 1);
	assert_int_equal(log.count, 1);
	assert_int_equal(strncmp(log.w[0].var, name, strlen(log.w[0].var)), 0);
	assert_string_equal(log.w[0].value, "1");
}

static void harness_variables_are_not_reported(void **state)
{
	char *envp[] = { "NUMASHIM_LIB=/x/libnumashim.so", "NUMASHIM_BUILDDIR=/b",
			 "NUMASHIM_SRCDIR=/s", "NUMASHIM_VM_CACHE=/c",
			 "NUMASHIM_NO_APT=1", NULL };
	struct policy_config cfg;

	config_from(&cfg, envp);
	assert_config_default(&cfg);
}

/* tests/vm/vmrun exports these inside the guest, where every program runs
 * under the shim. */
static void vm_guest_variables_are_not_reported(void **state)
{
	char *envp[] = { "NUMASHIM_VM_TOPOLOGY=4", "NUMASHIM_VM_GUEST=1",
			 "NUMASHIM_VM_CPUSET_MEMS=0-1", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	policy_config_from_env(envp, &cfg, warnlog_fn, &log);
	for (int i = 0; i < log.count && i < UNIT_MAX_WARNINGS; i++)
		print_message("reported: %s=%s\n", log.w[i].var, log.w[i].value);
	assert_int_equal(log.count, 0);
}

static void other_variables_are_ignored(void **state)
{
	char *envp[] = { "PATH=/bin", "numashim_policy=bogus",
			 "NUMASHIMPOLICY=bogus", "XNUMASHIM_POLICY=bogus",
			 "NUMASHIM_POLICY", "=NUMASHIM_POLICY=bogus", NULL };
	struct policy_config cfg;

	config_from(&cfg, envp);
	assert_config_default(&cfg);
}

static void good_values_combine(void **state)
{
	char *envp[] = { "NUMASHIM_POLICY=bind:1-2", "NUMASHIM_NODES=0-2",
			 "NUMASHIM_STRICT=yes", "NUMASHIM_VERBOSE=2",
			 "NUMASHIM_FAKE_NODES=4", NULL };
	struct policy_config cfg;

	config_from(&cfg, envp);
	assert_int_equal(cfg.mode, POLICY_BIND);
	assert_int_equal(cfg.bind_nodes, NODES(1, 2));
	assert_int_equal(cfg.nodes, NODES(0, 1, 2));
	assert_true(cfg.strict);
	assert_int_equal(cfg.verbose, 2);
	assert_int_equal(cfg.fake_nodes, 4);
}

static void bad_value_does_not_disturb_good_ones(void **state)
{
	char *envp[] = { "NUMASHIM_POLICY=interleave", "NUMASHIM_STRICT=maybe",
			 "NUMASHIM_VERBOSE=1", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, &cfg, warnlog_fn, &log), 1);
	assert_one_warning(&log, "NUMASHIM_STRICT", "maybe");
	assert_int_equal(cfg.mode, POLICY_INTERLEAVE);
	assert_false(cfg.strict);
	assert_int_equal(cfg.verbose, 1);
}

static void every_problem_is_counted(void **state)
{
	char *envp[] = { "NUMASHIM_POLICY=x", "NUMASHIM_NODES=x",
			 "NUMASHIM_TYPO=1", "NUMASHIM_FAKE_NODES=x", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, &cfg, warnlog_fn, &log), 4);
	assert_int_equal(log.count, 4);
	assert_string_equal(log.w[2].var, "NUMASHIM_TYPO");
	assert_config_default(&cfg);
}

/* ------------------------------------------------ secure execution */

/* AT_SECURE (a setuid program run by another user): whatever the user set,
 * the defaults and no message. */
static void secure_process_ignores_every_variable(void **state)
{
	char *envp[] = { "NUMASHIM_POLICY=bind:1", "NUMASHIM_STRICT=1",
			 "NUMASHIM_THREADS=spread", "NUMASHIM_FAKE_NODES=2",
			 "NUMASHIM_VERBOSE=2", "NUMASHIM_STATS=off",
			 "NUMASHIM_INTERLEAVE_MIN=4K", "NUMASHIM_TYPO=1",
			 "NUMASHIM_NODES=bogus", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_for_process(envp, true, &cfg, warnlog_fn,
						   &log), 0);
	assert_int_equal(log.count, 0);
	assert_config_default(&cfg);
}

/* ... but for NUMASHIM_POLICY=off, which gives plain jemalloc. */
static void secure_process_may_turn_numashim_off(void **state)
{
	char *envp[] = { "NUMASHIM_STRICT=1", "NUMASHIM_POLICY=off", NULL };
	char *alias[] = { "NUMASHIM_POLICY=none", NULL };
	char *other[] = { "NUMASHIM_POLICY=interleave", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_for_process(envp, true, &cfg, warnlog_fn,
						   &log), 0);
	assert_int_equal(cfg.mode, POLICY_OFF);
	assert_false(cfg.strict);
	/* "none", off's alias, is read as off here too (found by a review:
	 * the secure check knew "off" only). */
	assert_int_equal(policy_config_for_process(alias, true, &cfg, warnlog_fn,
						   &log), 0);
	assert_int_equal(cfg.mode, POLICY_OFF);
	assert_int_equal(policy_config_for_process(other, true, &cfg, warnlog_fn,
						   &log), 0);
	assert_int_equal(cfg.mode, POLICY_LOCAL);
	assert_int_equal(log.count, 0);
}

/* Not secure: exactly policy_config_from_env. */
static void ordinary_process_reads_the_environment(void **state)
{
	char *envp[] = { "NUMASHIM_POLICY=bind:1", "NUMASHIM_TYPO=1", NULL };
	struct policy_config cfg;
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_for_process(envp, false, &cfg, warnlog_fn,
						   &log), 1);
	assert_int_equal(cfg.mode, POLICY_BIND);
	assert_one_warning(&log, "NUMASHIM_TYPO", "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_config_is_local_on_all_nodes),
		cmocka_unit_test(empty_environment_gives_defaults),
		cmocka_unit_test(every_option_is_documented),
		cmocka_unit_test(every_option_has_tests_here),
		cmocka_unit_test(every_option_default_text_means_the_default),
		cmocka_unit_test(every_option_rejects_garbage),
		cmocka_unit_test(every_option_rejects_an_empty_value),
		cmocka_unit_test(policy_accepts_every_mode_word),
		cmocka_unit_test(policy_preferred_sets_the_node),
		cmocka_unit_test(policy_bind_keeps_mask_and_text),
		cmocka_unit_test(policy_unknown_mode_is_reported),
		cmocka_unit_test(policy_preferred_without_one_valid_node_is_reported),
		cmocka_unit_test(policy_bind_without_a_valid_list_is_reported),
		cmocka_unit_test(nodes_accepts_numactl_lists),
		cmocka_unit_test(nodes_bad_list_is_reported),
		cmocka_unit_test(nodes_out_of_range_is_reported),
		cmocka_unit_test(nodes_selecting_nothing_is_reported),
		cmocka_unit_test(strict_accepts_booleans),
		cmocka_unit_test(strict_non_boolean_is_reported),
		cmocka_unit_test(verbose_accepts_levels_and_booleans),
		cmocka_unit_test(verbose_bad_level_is_reported),
		cmocka_unit_test(fake_nodes_accepts_0_to_64),
		cmocka_unit_test(fake_nodes_bad_count_is_reported),
		cmocka_unit_test(unknown_numashim_variable_is_reported),
		cmocka_unit_test(unknown_long_variable_name_is_reported_cut),
		cmocka_unit_test(harness_variables_are_not_reported),
		cmocka_unit_test(vm_guest_variables_are_not_reported),
		cmocka_unit_test(other_variables_are_ignored),
		cmocka_unit_test(good_values_combine),
		cmocka_unit_test(bad_value_does_not_disturb_good_ones),
		cmocka_unit_test(every_problem_is_counted),
		cmocka_unit_test(secure_process_ignores_every_variable),
		cmocka_unit_test(secure_process_may_turn_numashim_off),
		cmocka_unit_test(ordinary_process_reads_the_environment),
	};

	return cmocka_run_group_tests_name("policy/options.c", tests, NULL, NULL);
}
