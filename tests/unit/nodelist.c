/*
 * policy/nodelist.c: numactl node lists, sysfs id lists, list formatting
 * and sizes with K/M/G/T suffixes.
 */
#include "tests/unit/unit.h"

#include <errno.h>
#include <string.h>

#define ALL (~(policy_nodemask_t)0)
#define SENTINEL ((policy_nodemask_t)0x5a5a5a5a5a5a5a5aULL)

static policy_nodemask_t parse_ok(const char *s, policy_nodemask_t allowed)
{
	policy_nodemask_t m = SENTINEL;

	print_message("parsing \"%s\"\n", s);
	assert_int_equal(policy_parse_nodelist(s, allowed, &m), 0);
	return m;
}

/* Asserts the error and that *out was not written. */
static void parse_fails(const char *s, int err)
{
	policy_nodemask_t m = SENTINEL;

	print_message("parsing \"%s\"\n", s);
	assert_int_equal(policy_parse_nodelist(s, ALL, &m), err);
	assert_int_equal(m, SENTINEL);
}

/* ------------------------------------------------------ parse_nodelist */

static void parse_all_is_the_allowed_set(void **state)
{
	assert_int_equal(parse_ok("all", NODES(0, 1, 3)), NODES(0, 1, 3));
	assert_int_equal(parse_ok("all", ALL), ALL);
}

static void parse_single_node(void **state)
{
	assert_int_equal(parse_ok("3", ALL), NODES(3));
}

static void parse_range(void **state)
{
	assert_int_equal(parse_ok("0-3", ALL), NODES(0, 1, 2, 3));
	assert_int_equal(parse_ok("2-2", ALL), NODES(2));
}

static void parse_list_of_ranges_and_nodes(void **state)
{
	assert_int_equal(parse_ok("0-1,4,6-7", ALL), NODES(0, 1, 4, 6, 7));
	assert_int_equal(parse_ok("5,1", ALL), NODES(1, 5));
	assert_int_equal(parse_ok("1,1-2", ALL), NODES(1, 2));
}

static void parse_node_63_is_the_highest(void **state)
{
	assert_int_equal(parse_ok("63", ALL), policy_node_bit(63));
	assert_int_equal(parse_ok("0-63", 0), ALL);
}

static void parse_absolute_ids_ignore_allowed(void **state)
{
	/* policy_resolve narrows and reports; the parser only parses. */
	assert_int_equal(parse_ok("5", NODES(0, 1)), NODES(5));
}

static void parse_inversion_is_allowed_minus_list(void **state)
{
	assert_int_equal(parse_ok("!1", NODES(0, 1, 2, 3)), NODES(0, 2, 3));
	assert_int_equal(parse_ok("!0-1", NODES(0, 1, 2, 3)), NODES(2, 3));
	assert_int_equal(parse_ok("!7", NODES(0, 1)), NODES(0, 1));
}

static void parse_inverted_all_is_empty(void **state)
{
	assert_int_equal(parse_ok("!all", NODES(0, 1)), 0);
}

static void parse_relative_counts_allowed_nodes(void **state)
{
	assert_int_equal(parse_ok("+0-1", NODES(1, 3, 5)), NODES(1, 3));
	assert_int_equal(parse_ok("+2", NODES(1, 3, 5)), NODES(5));
}

static void parse_inverted_relative(void **state)
{
	assert_int_equal(parse_ok("!+0", NODES(1, 3)), NODES(3));
}

static void parse_relative_beyond_allowed_is_erange(void **state)
{
	policy_nodemask_t m = SENTINEL;

	assert_int_equal(policy_parse_nodelist("+3", NODES(0, 1, 2), &m), -ERANGE);
	assert_int_equal(m, SENTINEL);
}

static void parse_relative_all_is_einval(void **state)
{
	parse_fails("+all", -EINVAL);
}

static void parse_null_and_empty_are_einval(void **state)
{
	parse_fails(NULL, -EINVAL);
	parse_fails("", -EINVAL);
	parse_fails("!", -EINVAL);
	parse_fails("+", -EINVAL);
	parse_fails("!+", -EINVAL);
}

static void parse_whitespace_is_einval(void **state)
{
	static const char *const bad[] = { " 1", "1 ", "0, 1", "0 ,1", "1\n",
					   "\t1", "0- 1", "all ", " all" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], -EINVAL);
}

static void parse_garbage_is_einval(void **state)
{
	static const char *const bad[] = { "x", "1x", "one", "0x1", "-1", "1--2",
					   "1-2-3", "1,,2", ",1", "!!1", "+!1",
					   "ALL", "all,1", "1-", "1;2" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], -EINVAL);
}

static void parse_trailing_comma_is_einval(void **state)
{
	parse_fails("0,", -EINVAL);
	parse_fails("0-1,", -EINVAL);
}

static void parse_reversed_range_is_einval(void **state)
{
	parse_fails("3-1", -EINVAL);
}

static void parse_node_64_or_more_is_erange(void **state)
{
	parse_fails("64", -ERANGE);
	parse_fails("0-64", -ERANGE);
	parse_fails("1,100", -ERANGE);
	parse_fails("99999999999999999999999", -ERANGE);
}

/* ------------------------------------------------------ format_nodelist */

static const char *format(policy_nodemask_t m, char *buf, size_t len)
{
	size_t n = policy_format_nodelist(m, buf, len);

	assert_int_equal(n, strlen(buf));
	return buf;
}

static void format_empty_mask_is_empty_string(void **state)
{
	char buf[8] = "xxxxxxx";

	assert_int_equal(policy_format_nodelist(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

static void format_single_node_and_ranges(void **state)
{
	char buf[64];

	assert_string_equal(format(NODES(3), buf, sizeof(buf)), "3");
	assert_string_equal(format(NODES(0, 1, 4, 6, 7), buf, sizeof(buf)),
			    "0-1,4,6-7");
	assert_string_equal(format(ALL, buf, sizeof(buf)), "0-63");
	assert_string_equal(format(NODES(9, 10, 63), buf, sizeof(buf)),
			    "9-10,63");
}

static void format_round_trips_through_parse(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (int i = 0; i < 2000; i++) {
		char buf[256];
		policy_nodemask_t m, back = 0;

		/* xorshift64, thinned out so ranges and gaps both occur */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		m = i % 3 ? x & (x >> (i % 5)) : x;
		if (m == 0)
			continue;
		format(m, buf, sizeof(buf));
		assert_int_equal(policy_parse_nodelist(buf, ALL, &back), 0);
		assert_int_equal(back, m);
	}
}

static void format_truncated_output_ends_in_ellipsis(void **state)
{
	policy_nodemask_t evens = 0x5555555555555555ULL;

	for (size_t len = 4; len < 40; len++) {
		char buf[64];

		memset(buf, '#', sizeof(buf));
		format(evens, buf, len);
		print_message("len %zu: \"%s\"\n", len, buf);
		assert_true(strlen(buf) < len);
		assert_true(strlen(buf) >= 3);
		assert_string_equal(buf + strlen(buf) - 3, "...");
		assert_int_equal(buf[len], '#');
	}
}

/* What is shown before the "..." must not name a node that is not in the
 * mask: "10,1..." reads as node 1. */
static void format_truncated_output_shows_only_whole_node_ids(void **state)
{
	policy_nodemask_t m = NODES(10, 12, 14, 16, 18);

	for (size_t len = 4; len < 16; len++) {
		char buf[64], *dots;
		policy_nodemask_t shown = 0;

		format(m, buf, len);
		print_message("len %zu: \"%s\"\n", len, buf);
		dots = strstr(buf, "...");
		if (dots == NULL)
			continue;
		*dots = '\0';
		if (dots > buf && dots[-1] == ',')
			dots[-1] = '\0';
		if (buf[0] == '\0')
			continue;
		assert_int_equal(policy_parse_nodelist(buf, ALL, &shown), 0);
		assert_int_equal(shown & ~m, 0);
	}
}

static void format_zero_length_writes_nothing(void **state)
{
	char buf[4] = "abc";

	assert_int_equal(policy_format_nodelist(NODES(1), buf, 0), 0);
	assert_string_equal(buf, "abc");
}

static void format_tiny_buffers_stay_terminated(void **state)
{
	for (size_t len = 1; len < 4; len++) {
		char buf[8];

		memset(buf, '#', sizeof(buf));
		format(ALL, buf, len);
		assert_true(strlen(buf) < len);
		assert_int_equal(buf[len], '#');
	}
}

/* ------------------------------------------------------ list_foreach */

struct ids {
	int n;
	long id[2048];
};

static void collect(void *ctx, long id)
{
	struct ids *c = ctx;

	c->id[c->n++] = id;
}

static void foreach_reads_sysfs_list_with_newline(void **state)
{
	static const long want[] = { 0, 1, 2, 3, 8, 9, 10, 11 };
	struct ids c = { 0 };

	assert_int_equal(policy_list_foreach("0-3,8-11\n", 1024, collect, &c), 0);
	assert_int_equal(c.n, 8);
	assert_memory_equal(c.id, want, sizeof(want));
}

static void foreach_single_id(void **state)
{
	struct ids c = { 0 };

	assert_int_equal(policy_list_foreach("5\n", 64, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.id[0], 5);
}

static void foreach_empty_list_calls_nothing(void **state)
{
	struct ids c = { 0 };

	assert_int_equal(policy_list_foreach("", 64, collect, &c), 0);
	assert_int_equal(policy_list_foreach("\n", 64, collect, &c), 0);
	assert_int_equal(c.n, 0);
}

static void foreach_full_cpu_range(void **state)
{
	struct ids c = { 0 };

	assert_int_equal(policy_list_foreach("0-1023\n", 1024, collect, &c), 0);
	assert_int_equal(c.n, 1024);
	assert_int_equal(c.id[1023], 1023);
}

static void foreach_id_at_limit_is_erange(void **state)
{
	struct ids c = { 0 };

	assert_int_equal(policy_list_foreach("0-4\n", 4, collect, &c), -ERANGE);
	assert_int_equal(policy_list_foreach("1024", 1024, collect, &c), -ERANGE);
}

static void foreach_garbage_is_einval(void **state)
{
	static const char *const bad[] = { "a", "0-", "0-\n", "0,,1", "1-0",
					   "0 1\n", "0,\n", ",0", "0-1-2",
					   "\n0" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ids c = { 0 };

		print_message("list \"%s\"\n", bad[i]);
		assert_int_equal(policy_list_foreach(bad[i], 64, collect, &c),
				 -EINVAL);
	}
}

/* ------------------------------------------------------ parse_size */

static size_t size_ok(const char *s)
{
	size_t v = 12345;

	print_message("size \"%s\"\n", s);
	assert_int_equal(policy_parse_size(s, &v), 0);
	return v;
}

static void size_fails(const char *s, int err)
{
	size_t v = 12345;

	print_message("size \"%s\"\n", s);
	assert_int_equal(policy_parse_size(s, &v), err);
	assert_int_equal(v, 12345);
}

static void size_plain_bytes(void **state)
{
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("007"), 7);
}

static void size_binary_suffixes(void **state)
{
	assert_int_equal(size_ok("1K"), 1024);
	assert_int_equal(size_ok("3k"), 3 * 1024);
	assert_int_equal(size_ok("2M"), 2 << 20);
	assert_int_equal(size_ok("2m"), 2 << 20);
	assert_int_equal(size_ok("3G"), 3ULL << 30);
	assert_int_equal(size_ok("1T"), 1ULL << 40);
	assert_int_equal(size_ok("5t"), 5ULL << 40);
}

static void size_kib_and_mb_forms(void **state)
{
	assert_int_equal(size_ok("4KiB"), 4096);
	assert_int_equal(size_ok("4KB"), 4096);
	assert_int_equal(size_ok("4kb"), 4096);
	assert_int_equal(size_ok("2MiB"), 2 << 20);
	assert_int_equal(size_ok("2MB"), 2 << 20);
	assert_int_equal(size_ok("1GiB"), 1ULL << 30);
	assert_int_equal(size_ok("1TB"), 1ULL << 40);
}

static void size_garbage_is_einval(void **state)
{
	static const char *const bad[] = { "", "K", "12Q", "1.5M", "-1", " 1",
					   "1 ", "0x10", "1KK", "1iB", "1B",
					   "1KiBx", "M1", "1 K", "1Bi", "+1" };

	size_fails(NULL, -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		size_fails(bad[i], -EINVAL);
}

static void size_overflow_is_erange(void **state)
{
	size_fails("18446744073709551616", -ERANGE);   /* 2^64 */
	size_fails("99999999999999999999999", -ERANGE);
	size_fails("16777216T", -ERANGE);              /* 2^64 */
	size_fails("17179869184G", -ERANGE);           /* 2^64 */
	size_fails("18014398509481984K", -ERANGE);     /* 2^64 */
}

static void size_largest_suffixed_values_parse(void **state)
{
	assert_int_equal(size_ok("16777215T"), 16777215ULL << 40);
	assert_int_equal(size_ok("18014398509481983K"),
			 18014398509481983ULL << 10);
}

static void size_max_parses(void **state)
{
	assert_int_equal(size_ok("18446744073709551615"), SIZE_MAX);
	assert_int_equal(size_ok("18446744073709551610"), SIZE_MAX - 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_all_is_the_allowed_set),
		cmocka_unit_test(parse_single_node),
		cmocka_unit_test(parse_range),
		cmocka_unit_test(parse_list_of_ranges_and_nodes),
		cmocka_unit_test(parse_node_63_is_the_highest),
		cmocka_unit_test(parse_absolute_ids_ignore_allowed),
		cmocka_unit_test(parse_inversion_is_allowed_minus_list),
		cmocka_unit_test(parse_inverted_all_is_empty),
		cmocka_unit_test(parse_relative_counts_allowed_nodes),
		cmocka_unit_test(parse_inverted_relative),
		cmocka_unit_test(parse_relative_beyond_allowed_is_erange),
		cmocka_unit_test(parse_relative_all_is_einval),
		cmocka_unit_test(parse_null_and_empty_are_einval),
		cmocka_unit_test(parse_whitespace_is_einval),
		cmocka_unit_test(parse_garbage_is_einval),
		cmocka_unit_test(parse_trailing_comma_is_einval),
		cmocka_unit_test(parse_reversed_range_is_einval),
		cmocka_unit_test(parse_node_64_or_more_is_erange),
		cmocka_unit_test(format_empty_mask_is_empty_string),
		cmocka_unit_test(format_single_node_and_ranges),
		cmocka_unit_test(format_round_trips_through_parse),
		cmocka_unit_test(format_truncated_output_ends_in_ellipsis),
		cmocka_unit_test(format_truncated_output_shows_only_whole_node_ids),
		cmocka_unit_test(format_zero_length_writes_nothing),
		cmocka_unit_test(format_tiny_buffers_stay_terminated),
		cmocka_unit_test(foreach_reads_sysfs_list_with_newline),
		cmocka_unit_test(foreach_single_id),
		cmocka_unit_test(foreach_empty_list_calls_nothing),
		cmocka_unit_test(foreach_full_cpu_range),
		cmocka_unit_test(foreach_id_at_limit_is_erange),
		cmocka_unit_test(foreach_garbage_is_einval),
		cmocka_unit_test(size_plain_bytes),
		cmocka_unit_test(size_binary_suffixes),
		cmocka_unit_test(size_kib_and_mb_forms),
		cmocka_unit_test(size_garbage_is_einval),
		cmocka_unit_test(size_overflow_is_erange),
		cmocka_unit_test(size_largest_suffixed_values_parse),
		cmocka_unit_test(size_max_parses),
	};

	return cmocka_run_group_tests_name("policy/nodelist.c", tests, NULL, NULL);
}
