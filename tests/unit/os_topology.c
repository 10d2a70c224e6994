/*
 * shim/os.c: os_read_topology against fake sysfs trees built in a temporary
 * directory (root/sys/devices/system/node/..., root/mems_allowed).
 */
#include "shim/os.h"
#include "tests/unit/faketopo.h"
#include "tests/unit/faketree.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_DIR "/sys/devices/system/node"

/* ------------------------------------------------------ fake trees */

static void put_node(const char *root, int node, const char *file,
		     const char *text)
{
	char rel[128];

	snprintf(rel, sizeof(rel), NODE_DIR "/node%d/%s", node, file);
	faketree_put(root, rel, text);
}

/* A two-node machine: CPUs 0-3 and 4-7, SLIT 10/20. */
static void put_two_nodes(const char *root)
{
	faketree_put(root, NODE_DIR "/online", "0-1\n");
	faketree_put(root, NODE_DIR "/has_memory", "0-1\n");
	put_node(root, 0, "cpulist", "0-3\n");
	put_node(root, 1, "cpulist", "4-7\n");
	put_node(root, 0, "distance", "10 20\n");
	put_node(root, 1, "distance", "20 10\n");
}

static void read_topology(const char *root, struct policy_topology *t)
{
	memset(t, 0x5a, sizeof(*t));
	assert_int_equal(os_read_topology(root, t), 0);
}

/* What the rest of numashim relies on, whatever sysfs held. */
static void assert_topology_sane(const struct policy_topology *t)
{
	struct policy_config cfg;
	struct policy_plan plan;
	struct warnlog log;

	assert_in_range(t->nr_nodes, 1, POLICY_MAX_NODES);
	assert_in_range(t->nr_cpus, 1, POLICY_MAX_CPUS);
	assert_true(t->online != 0);
	assert_int_equal(t->has_memory & ~t->online, 0);
	assert_int_equal(t->allowed & ~t->online, 0);
	for (int c = 0; c < POLICY_MAX_CPUS; c++) {
		if (c >= t->nr_cpus || t->cpu_node[c] < 0) {
			assert_true(c < t->nr_cpus || t->cpu_node[c] == -1);
			continue;
		}
		assert_true(t->online & policy_node_bit(t->cpu_node[c]));
	}
	policy_config_default(&cfg);
	warnlog_reset(&log);
	policy_resolve(&cfg, t, &plan, warnlog_fn, &log);
	assert_plan_usable(&plan, t);
	assert_int_equal(log.count, 0);
}

static void assert_one_node_with_every_cpu(const struct policy_topology *t)
{
	struct policy_topology want;
	cpu_set_t mine;
	/* No possible list in the tree: the CPUs the process may run on. */
	long ncpu = sched_getaffinity(0, sizeof(mine), &mine) ? 1 : CPU_COUNT(&mine);

	policy_topology_single(&want, ncpu > 0 ? (int)ncpu : 1);
	assert_int_equal(t->nr_nodes, 1);
	assert_int_equal(t->online, 1);
	assert_int_equal(t->has_memory, 1);
	assert_int_equal(t->allowed, 1);
	assert_int_equal(t->nr_cpus, want.nr_cpus);
	assert_memory_equal(t->cpu_node, want.cpu_node, sizeof(want.cpu_node));
	assert_topology_sane(t);
}

/* ------------------------------------------------------ well-formed trees */

static void two_nodes_are_read(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	read_topology(*state, &t);
	assert_int_equal(t.nr_nodes, 2);
	assert_int_equal(t.online, NODES(0, 1));
	assert_int_equal(t.has_memory, NODES(0, 1));
	assert_int_equal(t.allowed, NODES(0, 1));
	assert_int_equal(t.nr_cpus, 8);
	for (int c = 0; c < 8; c++)
		assert_int_equal(t.cpu_node[c], c / 4);
	assert_int_equal(t.cpu_node[8], -1);
	assert_int_equal(t.distance[0][0], 10);
	assert_int_equal(t.distance[0][1], 20);
	assert_int_equal(t.distance[1][0], 20);
	assert_int_equal(t.fake, 0);
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		assert_int_equal(t.mem_node[n], n);
	assert_topology_sane(&t);
}

static void four_node_distances_are_read(void **state)
{
	static const char *const rows[4] = {
		"10 20 30 30\n", "20 10 30 30\n", "30 30 10 20\n", "30 30 20 10\n",
	};
	struct policy_topology t, want;

	faketree_put(*state, NODE_DIR "/online", "0-3\n");
	faketree_put(*state, NODE_DIR "/has_memory", "0-3\n");
	for (int n = 0; n < 4; n++) {
		char cpus[32];

		snprintf(cpus, sizeof(cpus), "%d-%d\n", 4 * n, 4 * n + 3);
		put_node(*state, n, "cpulist", cpus);
		put_node(*state, n, "distance", rows[n]);
	}
	read_topology(*state, &t);
	faketopo_four(&want);
	assert_int_equal(t.nr_nodes, 4);
	assert_int_equal(t.nr_cpus, 16);
	assert_memory_equal(t.cpu_node, want.cpu_node, sizeof(want.cpu_node));
	assert_memory_equal(t.distance, want.distance, sizeof(want.distance));
	assert_int_equal(policy_nearest(&t, 3, NODES(0, 1, 2)), 2);
	assert_topology_sane(&t);
}

static void sparse_node_ids_distance_columns_follow_online(void **state)
{
	struct policy_topology t;

	faketree_put(*state, NODE_DIR "/online", "0,2\n");
	faketree_put(*state, NODE_DIR "/has_memory", "0,2\n");
	put_node(*state, 0, "cpulist", "0-1\n");
	put_node(*state, 2, "cpulist", "2-3\n");
	put_node(*state, 0, "distance", "10 21\n");
	put_node(*state, 2, "distance", "21 10\n");
	read_topology(*state, &t);
	assert_int_equal(t.nr_nodes, 3);
	assert_int_equal(t.online, NODES(0, 2));
	assert_int_equal(t.cpu_node[3], 2);
	assert_int_equal(t.distance[0][2], 21);
	assert_int_equal(t.distance[2][0], 21);
	assert_int_equal(t.distance[2][2], 10);
	assert_int_equal(t.distance[0][1], 0);
	assert_topology_sane(&t);
}

static void cpu_only_node_has_no_memory(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	faketree_put(*state, NODE_DIR "/online", "0-2\n");
	put_node(*state, 2, "cpulist", "8-9\n");
	put_node(*state, 0, "distance", "10 20 30\n");
	put_node(*state, 1, "distance", "20 10 20\n");
	put_node(*state, 2, "distance", "30 20 10\n");
	read_topology(*state, &t);
	assert_int_equal(t.online, NODES(0, 1, 2));
	assert_int_equal(t.has_memory, NODES(0, 1));
	assert_int_equal(t.cpu_node[9], 2);
	assert_int_equal(t.nr_cpus, 10);
	assert_topology_sane(&t);
}

static void memory_only_node_has_no_cpus(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	faketree_put(*state, NODE_DIR "/online", "0-2\n");
	faketree_put(*state, NODE_DIR "/has_memory", "0-2\n");
	put_node(*state, 2, "cpulist", "\n");
	read_topology(*state, &t);
	assert_int_equal(t.has_memory, NODES(0, 1, 2));
	assert_int_equal(t.nr_cpus, 8);
	for (int c = 0; c < 8; c++)
		assert_true(t.cpu_node[c] != 2);
	assert_topology_sane(&t);
}

static void mems_allowed_file_sets_allowed(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	faketree_put(*state, "/mems_allowed", "1\n");
	read_topology(*state, &t);
	assert_int_equal(t.allowed, NODES(1));
	assert_topology_sane(&t);
}

/* ------------------------------------------------------ missing files */

static void missing_has_memory_means_every_node_has_memory(void **state)
{
	struct policy_topology t;
	char path[512];

	put_two_nodes(*state);
	snprintf(path, sizeof(path), "%s" NODE_DIR "/has_memory", (char *)*state);
	assert_int_equal(unlink(path), 0);
	read_topology(*state, &t);
	assert_int_equal(t.has_memory, NODES(0, 1));
	assert_topology_sane(&t);
}

static void missing_mems_allowed_allows_every_online_node(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	read_topology(*state, &t);
	assert_int_equal(t.allowed, t.online);
}

static void no_sysfs_is_one_node_with_every_cpu(void **state)
{
	struct policy_topology t;

	read_topology(*state, &t);
	assert_one_node_with_every_cpu(&t);
}

/* One node: the CPUs are those up to the highest of sysfs's possible list
 * (read without libc's sysconf, which may allocate). */
static void one_node_counts_the_possible_cpus(void **state)
{
	struct policy_topology t;

	faketree_put(*state, "/sys/devices/system/cpu/possible", "0-5,8\n");
	read_topology(*state, &t);
	assert_int_equal(t.nr_nodes, 1);
	assert_int_equal(t.nr_cpus, 9);
	assert_int_equal(t.cpu_node[8], 0);
	assert_topology_sane(&t);
}

/* NUMASHIM_FAKE_NODES splits the online CPUs: with hot-plug slots in the
 * possible list, both online CPUs went to virtual node 0. */
static void fake_nodes_split_only_the_online_cpus(void **state)
{
	struct policy_topology t;

	faketree_put(*state, "/sys/devices/system/cpu/possible", "0-7\n");
	faketree_put(*state, "/sys/devices/system/cpu/online", "0-1\n");
	read_topology(*state, &t);
	os_keep_online_cpus(*state, &t);
	assert_int_equal(policy_topology_fake(&t, 2), 0);
	assert_int_equal(t.cpu_node[0], 0);
	assert_int_equal(t.cpu_node[1], 1);
	for (int c = 2; c < 8; c++)
		assert_int_equal(t.cpu_node[c], -1);
	assert_topology_sane(&t);
	read_topology(*state, &t);
	os_keep_online_cpus(*state, &t);
	assert_int_equal(policy_topology_fake(&t, 4), -EINVAL);
}

/* No online list (no sysfs): every CPU read is kept. */
static void keep_online_without_a_list_keeps_every_cpu(void **state)
{
	struct policy_topology t, before;

	faketree_put(*state, "/sys/devices/system/cpu/possible", "0-5,8\n");
	read_topology(*state, &t);
	before = t;
	os_keep_online_cpus(*state, &t);
	assert_memory_equal(&t, &before, sizeof(t));
}

static void no_cpulist_files_is_one_node_with_every_cpu(void **state)
{
	struct policy_topology t;

	faketree_put(*state, NODE_DIR "/online", "0-1\n");
	faketree_put(*state, NODE_DIR "/has_memory", "0-1\n");
	read_topology(*state, &t);
	assert_one_node_with_every_cpu(&t);
}

/* Node 0 alone: its lists are not read at all (each process start would
 * pay for them); every configured CPU is on it. */
static void node_zero_alone_is_one_node_with_every_cpu(void **state)
{
	struct policy_topology t;

	faketree_put(*state, NODE_DIR "/online", "0\n");
	faketree_put(*state, NODE_DIR "/has_memory", "0\n");
	put_node(*state, 0, "cpulist", "0\n");
	put_node(*state, 0, "distance", "10\n");
	read_topology(*state, &t);
	assert_one_node_with_every_cpu(&t);
}

static void missing_distance_files_use_default_distances(void **state)
{
	struct policy_topology t;
	char path[512];

	put_two_nodes(*state);
	snprintf(path, sizeof(path), "%s" NODE_DIR "/node1/distance",
		 (char *)*state);
	assert_int_equal(unlink(path), 0);
	read_topology(*state, &t);
	assert_int_equal(t.distance[1][0], 0);
	assert_int_equal(policy_distance(&t, 1, 0), 20);
	assert_int_equal(policy_distance(&t, 1, 1), 10);
	assert_topology_sane(&t);
}

/* ------------------------------------------------------ malformed files */

static void garbage_online_is_one_node(void **state)
{
	static const char *const bad[] = { "garbage\n", "", "\n", "0-64\n",
					   "0-", "1-0\n" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy_topology t;

		print_message("online \"%s\"\n", bad[i]);
		put_two_nodes(*state);
		faketree_put(*state, NODE_DIR "/online", bad[i]);
		read_topology(*state, &t);
		assert_one_node_with_every_cpu(&t);
	}
}

static void garbage_has_memory_means_every_node_has_memory(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	faketree_put(*state, NODE_DIR "/has_memory", "zz\n");
	read_topology(*state, &t);
	assert_int_equal(t.has_memory, NODES(0, 1));
	assert_topology_sane(&t);
}

static void garbage_mems_allowed_allows_every_online_node(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	faketree_put(*state, "/mems_allowed", "Mems_allowed:\t3\n");
	read_topology(*state, &t);
	assert_int_equal(t.allowed, NODES(0, 1));
}

static void garbage_cpulist_node_has_no_cpus(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 1, "cpulist", "cpus: lots\n");
	read_topology(*state, &t);
	assert_int_equal(t.nr_cpus, 4);
	for (int c = 0; c < 4; c++)
		assert_int_equal(t.cpu_node[c], 0);
	assert_int_equal(t.cpu_node[4], -1);
	assert_topology_sane(&t);
}

static void truncated_cpulist_keeps_the_whole_ranges(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 0, "cpulist", "0-");
	put_node(*state, 1, "cpulist", "4-5,");
	read_topology(*state, &t);
	assert_int_equal(t.cpu_node[0], -1);
	assert_int_equal(t.cpu_node[4], 1);
	assert_int_equal(t.cpu_node[5], 1);
	assert_int_equal(t.nr_cpus, 6);
	assert_topology_sane(&t);
}

static void cpu_beyond_1024_is_dropped(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 1, "cpulist", "4-7,5000\n");
	read_topology(*state, &t);
	assert_int_equal(t.nr_cpus, 8);
	assert_int_equal(t.cpu_node[7], 1);
	assert_topology_sane(&t);
}

/* A plan without CPU 5000 would bind its threads to node 0's arenas,
 * though it is node 1's (found by a review: a 2-node, 2,048-CPU machine
 * had a quarter of its CPUs allocate from the other node). */
static void cpu_beyond_1024_passes_through(void **state)
{
	struct policy_topology t;
	struct policy_config cfg;
	struct policy_plan plan;
	struct warnlog log;

	put_two_nodes(*state);
	put_node(*state, 1, "cpulist", "4-7,5000\n");
	read_topology(*state, &t);
	assert_non_null(t.unsupported);
	policy_config_default(&cfg);
	warnlog_reset(&log);
	policy_resolve(&cfg, &t, &plan, warnlog_fn, &log);
	assert_false(plan.active);
	assert_string_equal(plan.reason, t.unsupported);
	assert_int_equal(log.count, 0);
}

/* Node ids of 64 or more: one node as before, but said as it is, and no
 * request is called impossible against it (found by a review:
 * "NUMASHIM_POLICY=bind:1: lists a node that does not exist" on an
 * 80-node machine). */
static void node_beyond_64_passes_through(void **state)
{
	struct policy_topology t;
	struct policy_config cfg;
	struct policy_plan plan;
	struct warnlog log;
	char *env[] = { "NUMASHIM_POLICY=bind:1", NULL };

	put_two_nodes(*state);
	faketree_put(*state, NODE_DIR "/online", "0-79\n");
	read_topology(*state, &t);
	assert_non_null(t.unsupported);
	assert_int_equal(t.online, NODES(0));
	config_from(&cfg, env);
	warnlog_reset(&log);
	policy_resolve(&cfg, &t, &plan, warnlog_fn, &log);
	assert_false(plan.active);
	assert_string_equal(plan.reason, t.unsupported);
	assert_int_equal(log.count, 0);
}

static void ordinary_machine_is_supported(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	read_topology(*state, &t);
	assert_null(t.unsupported);
}

static void garbage_distance_uses_default_distances(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 0, "distance", "near far\n");
	read_topology(*state, &t);
	assert_int_equal(policy_distance(&t, 0, 0), 10);
	assert_int_equal(policy_distance(&t, 0, 1), 20);
	assert_int_equal(t.distance[1][0], 20);
	assert_topology_sane(&t);
}

static void truncated_distance_keeps_what_was_read(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 0, "distance", "10");
	read_topology(*state, &t);
	assert_int_equal(t.distance[0][0], 10);
	assert_int_equal(t.distance[0][1], 0);
	assert_int_equal(policy_distance(&t, 0, 1), 20);
	assert_topology_sane(&t);
}

/* "10 2" is "10 20" cut short: node 1 must not look nearer than node 0
 * itself (SLIT values below 10 are invalid). */
static void truncated_distance_value_is_not_nearer_than_local(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 0, "distance", "10 2");
	read_topology(*state, &t);
	assert_int_equal(policy_nearest(&t, 0, t.online), 0);
	assert_true(policy_distance(&t, 0, 1) >= 10);
}

/* Also a check for signed overflow while reading the number: the unit
 * tests trap on undefined behaviour. */
static void huge_distance_value_saturates_at_255(void **state)
{
	struct policy_topology t;

	put_two_nodes(*state);
	put_node(*state, 0, "distance", "10 300\n");
	put_node(*state, 1, "distance", "99999999999999999999999 10\n");
	read_topology(*state, &t);
	assert_int_equal(t.distance[0][1], 255);
	assert_int_equal(t.distance[1][0], 255);
	assert_int_equal(t.distance[1][1], 10);
}

/* The root is a prefix like any other: a long TMPDIR must not cut it. */
static void long_root_is_not_cut(void **state)
{
	char root[400];
	struct policy_topology t;

	snprintf(root, sizeof(root), "%s/%s", (char *)*state,
		 "a-directory-name-long-enough-to-push-the-whole-root-prefix-"
		 "well-past-the-one-hundred-and-twenty-character-mark");
	assert_true(strlen(root) > 120);
	assert_int_equal(mkdir(root, 0755), 0);
	put_two_nodes(root);
	read_topology(root, &t);
	assert_int_equal(t.online, NODES(0, 1));
	assert_int_equal(t.nr_cpus, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TREE_TEST(two_nodes_are_read),
		TREE_TEST(four_node_distances_are_read),
		TREE_TEST(sparse_node_ids_distance_columns_follow_online),
		TREE_TEST(cpu_only_node_has_no_memory),
		TREE_TEST(memory_only_node_has_no_cpus),
		TREE_TEST(mems_allowed_file_sets_allowed),
		TREE_TEST(missing_has_memory_means_every_node_has_memory),
		TREE_TEST(missing_mems_allowed_allows_every_online_node),
		TREE_TEST(no_sysfs_is_one_node_with_every_cpu),
		TREE_TEST(one_node_counts_the_possible_cpus),
		TREE_TEST(fake_nodes_split_only_the_online_cpus),
		TREE_TEST(keep_online_without_a_list_keeps_every_cpu),
		TREE_TEST(node_zero_alone_is_one_node_with_every_cpu),
		TREE_TEST(no_cpulist_files_is_one_node_with_every_cpu),
		TREE_TEST(missing_distance_files_use_default_distances),
		TREE_TEST(garbage_online_is_one_node),
		TREE_TEST(garbage_has_memory_means_every_node_has_memory),
		TREE_TEST(garbage_mems_allowed_allows_every_online_node),
		TREE_TEST(garbage_cpulist_node_has_no_cpus),
		TREE_TEST(truncated_cpulist_keeps_the_whole_ranges),
		TREE_TEST(cpu_beyond_1024_is_dropped),
		TREE_TEST(cpu_beyond_1024_passes_through),
		TREE_TEST(node_beyond_64_passes_through),
		TREE_TEST(ordinary_machine_is_supported),
		TREE_TEST(garbage_distance_uses_default_distances),
		TREE_TEST(truncated_distance_keeps_what_was_read),
		TREE_TEST(truncated_distance_value_is_not_nearer_than_local),
		TREE_TEST(huge_distance_value_saturates_at_255),
		TREE_TEST(long_root_is_not_cut),
	};

	return cmocka_run_group_tests_name("shim/os.c: os_read_topology", tests,
					   NULL, NULL);
}
