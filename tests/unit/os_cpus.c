/*
 * shim/os.c: os_cpus_all_ours, numashim's copy of the test jemalloc makes
 * before it keeps per-CPU arenas, against fake sysfs CPU lists. The
 * process's own affinity is real: the lists are written to match it, or
 * not.
 */
#include "shim/os.h"
#include "tests/unit/faketree.h"
#include "tests/unit/unit.h"

#include <sched.h>
#include <stdio.h>

#define CPU_DIR "/sys/devices/system/cpu"
#define NODE_DIR "/sys/devices/system/node"

/* How many CPUs this process may run on. */
static int ours(void)
{
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	return CPU_COUNT(&set);
}

static void put_lists(const char *root, const char *online,
		      const char *possible)
{
	faketree_put(root, CPU_DIR "/online", online);
	faketree_put(root, CPU_DIR "/possible", possible);
}

/* "0-(n-1)" or "0" */
static void range(char *out, size_t len, int n)
{
	if (n == 1)
		snprintf(out, len, "0\n");
	else
		snprintf(out, len, "0-%d\n", n - 1);
}

static void all_online_and_ours(void **state)
{
	char l[32];

	range(l, sizeof(l), ours());
	put_lists(*state, l, l);
	assert_int_equal(os_cpus_all_ours(*state, 0), ours());
}

/* A VM with hot-plug slots: jemalloc's sysconf counts differ. */
static void more_possible_than_online(void **state)
{
	char on[32], pos[32];

	range(on, sizeof(on), ours());
	range(pos, sizeof(pos), ours() + 1);
	put_lists(*state, on, pos);
	assert_int_equal(os_cpus_all_ours(*state, 0), 0);
}

/* As many CPUs, but an id past n-1: jemalloc would take its arena index
 * from it, past the per-CPU arenas. */
static void ids_with_a_gap(void **state)
{
	char l[32];
	int n = ours();

	if (n == 1)
		snprintf(l, sizeof(l), "1\n");
	else
		snprintf(l, sizeof(l), "0,2-%d\n", n);
	put_lists(*state, l, l);
	assert_int_equal(os_cpus_all_ours(*state, 0), 0);
}

/* The process may run on fewer CPUs than are online (taskset, cpusets). */
static void fewer_ours_than_online(void **state)
{
	char l[32];

	range(l, sizeof(l), ours() + 1);
	put_lists(*state, l, l);
	assert_int_equal(os_cpus_all_ours(*state, 0), 0);
}

/* The possible CPUs' top from the caller (os_read_topology's count), not
 * read again: it must still match the online list. */
static void possible_top_from_the_caller(void **state)
{
	char l[32];

	range(l, sizeof(l), ours());
	faketree_put(*state, CPU_DIR "/online", l);
	assert_int_equal(os_cpus_all_ours(*state, ours()), ours());
	assert_int_equal(os_cpus_all_ours(*state, ours() + 1), 0);
}

/* A two-node host with hot-plug slots: the nodes' CPU lists hold the
 * online CPUs only, so the topology's nr_cpus is the online count, and
 * only possible_top tells the possible CPUs apart (found by a review:
 * nr_cpus passed as the top turned per-CPU arenas on there). */
static void multi_node_top_is_the_possible_one(void **state)
{
	struct policy_topology t;
	char on[32], pos[32];
	int n = ours();

	range(on, sizeof(on), n);
	range(pos, sizeof(pos), n + 2);
	put_lists(*state, on, pos);
	faketree_put(*state, NODE_DIR "/online", "0-1\n");
	faketree_put(*state, NODE_DIR "/has_memory", "0-1\n");
	faketree_put(*state, NODE_DIR "/node0/cpulist", on);
	faketree_put(*state, NODE_DIR "/node1/cpulist", "\n");
	assert_int_equal(os_read_topology(*state, &t), 0);
	assert_int_equal(t.nr_nodes, 2);
	assert_int_equal(t.nr_cpus, n);
	assert_int_equal(t.possible_top, n + 2);
	assert_int_equal(os_cpus_all_ours(*state, t.possible_top), 0);
}

static void no_lists(void **state)
{
	assert_int_equal(os_cpus_all_ours(*state, 0), 0);
}

static void garbage_list(void **state)
{
	put_lists(*state, "zero\n", "zero\n");
	assert_int_equal(os_cpus_all_ours(*state, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TREE_TEST(all_online_and_ours),
		TREE_TEST(more_possible_than_online),
		TREE_TEST(ids_with_a_gap),
		TREE_TEST(fewer_ours_than_online),
		TREE_TEST(possible_top_from_the_caller),
		TREE_TEST(multi_node_top_is_the_possible_one),
		TREE_TEST(no_lists),
		TREE_TEST(garbage_list),
	};

	return cmocka_run_group_tests_name("shim/os.c: os_cpus_all_ours", tests,
					   NULL, NULL);
}
