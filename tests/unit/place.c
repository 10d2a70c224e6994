/*
 * policy/place.c: weighted interleave runs (user-space weighted interleave
 * for kernels without MPOL_WEIGHTED_INTERLEAVE) and interleave by huge
 * page. The node a new thread goes to is in tests/unit/thread_place.c.
 */
#include "tests/unit/faketopo.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)
#define TiB ((size_t)1 << 40)
#define UNIT (2 * MiB)   /* the smallest run: one huge page */
#define MAX_RUNS 20000

/* Every run handed to the callback, checked as it comes: contiguous, in
 * order, non-empty, on a node with a weight. */
struct runs {
	const uint8_t *weight;
	size_t end;           /* where the next run must start */
	int count;
	size_t share[POLICY_MAX_NODES];
	int on[POLICY_MAX_NODES];   /* runs per node */
	size_t off[MAX_RUNS], len[MAX_RUNS];
	int node[MAX_RUNS];
};

static void collect(void *ctx, size_t off, size_t len, int node)
{
	struct runs *r = ctx;

	assert_in_range(node, 0, POLICY_MAX_NODES - 1);
	assert_true(r->weight[node] > 0);
	assert_true(off == r->end);
	assert_true(len > 0);
	if (r->count < MAX_RUNS) {
		r->off[r->count] = off;
		r->len[r->count] = len;
		r->node[r->count] = node;
	}
	r->count++;
	r->end = off + len;
	r->share[node] += len;
	r->on[node]++;
}

static struct runs R;

/* Cuts [0, len) with weight w, after `before` bytes of stream, into R; asserts
 * the runs cover it exactly and the return value counts them. */
static void cut_at(size_t len, const uint8_t *w, uint64_t before)
{
	int rc;

	memset(&R, 0, sizeof(R));
	R.weight = w;
	rc = policy_weighted_runs(0, len, w, before, collect, &R);
	print_message("len %zu after %llu: %d runs\n", len,
		      (unsigned long long)before, rc);
	assert_int_equal(rc, R.count);
	assert_true(R.end == len);
}

static void cut(size_t len, const uint8_t *w)
{
	cut_at(len, w, 0);
}

static void nothing(void *ctx, size_t off, size_t len, int node)
{
	fail_msg("no run expected, got %zu+%zu on node %d", off, len, node);
}

/* ------------------------------------------------------ weighted runs */

static void runs_cover_the_range_in_order(void **state)
{
	static const size_t lens[] = {
		1, 4096, UNIT - 1, UNIT, UNIT + 1, 10 * MiB + 123,
		256 * MiB, 3 * GiB + 4097,
	};
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		cut(lens[i], w);   /* collect checks each run */
}

/* Runs start on huge-page boundaries, so no 2 MiB page straddles two
 * nodes; only the last run may be shorter than a unit. */
static void runs_start_on_2mib_boundaries(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1, [2] = 2 };

	cut(1 * GiB + 12345, w);
	for (int i = 0; i < R.count; i++) {
		assert_int_equal(R.off[i] % UNIT, 0);
		if (i < R.count - 1)
			assert_int_equal(R.len[i] % UNIT, 0);
	}
}

/* A mapping's address is rarely 2 MiB-aligned: the runs still end on its
 * huge pages (the first is cut short), or a VMA boundary fell inside every
 * huge page and a 3:1 mapping lost half of them under THP. */
static void runs_of_an_unaligned_range_end_on_its_huge_pages(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1 };
	const uintptr_t addr = 0x7f0000000000 + MiB + 4096;
	int rc;

	memset(&R, 0, sizeof(R));
	R.weight = w;
	rc = policy_weighted_runs(addr, 65 * MiB, w, 0, collect, &R);
	assert_int_equal(rc, R.count);
	assert_true(R.end == 65 * MiB);
	assert_true(R.len[0] == 6 * MiB - (MiB + 4096));
	for (int i = 1; i < R.count; i++)
		assert_int_equal((addr + R.off[i]) % UNIT, 0);
	assert_true(R.share[1] == 16 * MiB);
}

static void three_to_one_on_256mib_is_75_25_exactly(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1 };

	cut(256 * MiB, w);
	assert_true(R.share[0] == 192 * MiB);
	assert_true(R.share[1] == 64 * MiB);
}

static void equal_weights_on_four_nodes_split_in_quarters(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { 1, 1, 1, 1 };

	cut(256 * MiB, w);
	for (int n = 0; n < 4; n++)
		assert_true(R.share[n] == 64 * MiB);
	cut(1 * GiB, w);
	for (int n = 0; n < 4; n++)
		assert_true(R.share[n] == 256 * MiB);
}

/* Runs alternate between the nodes: a cycle is one run per node. */
static void runs_go_round_the_nodes(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [1] = 2, [5] = 1, [9] = 1 };

	cut(64 * MiB, w);
	for (int i = 1; i < R.count; i++)
		assert_int_not_equal(R.node[i], R.node[i - 1]);
	assert_true(R.len[0] == 2 * R.len[1]);
	assert_true(R.share[1] == 32 * MiB);
	assert_true(R.share[5] == 16 * MiB);
	assert_true(R.share[9] == 16 * MiB);
}

/* A length that is not a multiple of a cycle: every node's share is off
 * its exact proportion by less than its part of one cycle. */
static void uneven_lengths_keep_shares_within_one_cycle(void **state)
{
	static const size_t lens[] = {
		7 * MiB + 1, 10 * MiB + 123, 255 * MiB + 4095, 999 * MiB + 17,
	};
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1, [3] = 2 };
	const unsigned total = 6;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		cut(lens[i], w);
		for (int n = 0; n < 4; n++) {
			double exact = (double)lens[i] * w[n] / total;
			double off = (double)R.share[n] - exact;

			assert_true(off < 0 ? -off <= (double)UNIT * w[n]
					    : off <= (double)UNIT * w[n]);
		}
	}
}

static void short_range_is_one_run_on_the_first_node(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [2] = 1, [3] = 5 };

	cut(4096, w);
	assert_int_equal(R.count, 1);
	assert_int_equal(R.node[0], 2);
}

static void empty_range_has_no_runs(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { 1, 1 };

	assert_int_equal(policy_weighted_runs(0, 0, w, 0, nothing, NULL), 0);
}

static void no_weight_is_einval(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { 0 };

	assert_int_equal(policy_weighted_runs(0, 256 * MiB, w, 0, nothing, NULL),
			 -EINVAL);
	assert_int_equal(policy_weighted_runs(0, 0, w, 0, nothing, NULL), -EINVAL);
}

/* Each run is a VMA: a 1 TiB range on two nodes needs ~2 * 256 runs, not
 * 2^19, and the shares stay exact. */
static void one_tib_on_two_nodes_needs_about_512_runs(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1 };

	cut(1 * TiB, w);
	assert_in_range(R.count, 2, 2 * 257);
	assert_true(R.share[0] == 768 * GiB);
	assert_true(R.share[1] == 256 * GiB);
	w[0] = 100;
	cut(1 * TiB + 12345, w);
	assert_in_range(R.count, 2, 2 * 257);
}

/* With more nodes the bound is per node: about 256 runs each. */
static void run_count_is_bounded_per_node(void **state)
{
	uint8_t w[POLICY_MAX_NODES];

	memset(w, 1, sizeof(w));
	cut(1 * TiB, w);
	assert_in_range(R.count, 64, 64 * 257);
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		assert_in_range(R.on[n], 1, 257);
		assert_true(R.share[n] == 16 * GiB);
	}
}

static void count_only(void *ctx, size_t off, size_t len, int node)
{
	size_t *end = ctx;

	assert_true(off == *end);
	*end = off + len;
}

static void huge_range_does_not_overflow(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 100, [63] = 100 };
	size_t end = 0;
	int rc = policy_weighted_runs(0, SIZE_MAX, w, 0, count_only, &end);

	assert_in_range(rc, 2, 2 * 257);
	assert_true(end == SIZE_MAX);
}

/* Where the stream is picks the node and how much of its share is left:
 * 3:1 in 2 MiB units is the cycle 0 0 0 1. */
static void stream_position_picks_where_the_cycle_starts(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1 };

	cut_at(4 * MiB, w, 0);               /* 0 0 */
	assert_int_equal(R.count, 1);
	assert_true(R.share[0] == 4 * MiB);
	cut_at(4 * MiB, w, 4 * MiB);         /* 0 | 1 */
	assert_int_equal(R.count, 2);
	assert_int_equal(R.node[0], 0);
	assert_true(R.len[0] == 2 * MiB);
	assert_int_equal(R.node[1], 1);
	cut_at(4 * MiB, w, 6 * MiB + 4095);  /* 1 | 0: rounded down to a unit */
	assert_int_equal(R.node[0], 1);
	assert_int_equal(R.node[1], 0);
	cut_at(4 * MiB, w, 14 * MiB);        /* the cycle is 8 MiB */
	assert_int_equal(R.node[0], 1);
	cut_at(10 * MiB + 5, w, 2 * MiB);    /* 0 0 | 1 | 0 0 0(part) */
	assert_int_equal(R.count, 3);
	assert_true(R.share[0] == 8 * MiB + 5);
	assert_true(R.share[1] == 2 * MiB);
}

/* Ranges cut one after the other as one stream (as the shim's large set
 * does). Whole units: exactly the weights' proportion. */
static void short_ranges_share_out_by_weight(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1, [4] = 2 };
	size_t total[POLICY_MAX_NODES] = { 0 };
	uint64_t before = 0;

	for (int i = 0; i < 300; i++) {
		cut_at(4 * MiB, w, before);
		before += 4 * MiB;
		for (int n = 0; n < POLICY_MAX_NODES; n++)
			total[n] += R.share[n];
	}
	/* 600 units = 100 cycles of 6: exactly 3:1:2. */
	assert_true(total[0] == 300 * 2 * MiB);
	assert_true(total[1] == 100 * 2 * MiB);
	assert_true(total[4] == 200 * 2 * MiB);
}

/* jemalloc's large extents are a page longer than the block: 6 MiB blocks
 * come as 6 MiB + 4 KiB. The stream still splits them 3:1, to within a
 * unit over all of them (counting whole units per range, as if each took
 * 4, would start every one at node 0: 99.9 % there). */
static void ranges_with_a_tail_keep_the_proportion(void **state)
{
	uint8_t w[POLICY_MAX_NODES] = { [0] = 3, [1] = 1 };
	const size_t len = 6 * MiB + 4096;
	double total[2] = { 0, 0 }, all;
	uint64_t before = 0;

	for (int i = 0; i < 400; i++) {
		cut_at(len, w, before);
		before += len;
		total[0] += (double)R.share[0];
		total[1] += (double)R.share[1];
	}
	all = total[0] + total[1];
	print_message("node 0 %.3f %%, node 1 %.3f %%\n", 100 * total[0] / all,
		      100 * total[1] / all);
	assert_true(total[0] / all > 0.74 && total[0] / all < 0.76);
}

/* ------------------------------------------------ interleave by huge page */

/* Runs of policy_interleave_runs, checked as they come: contiguous, in
 * order, non-empty, never two adjacent ones on the same node. Node -1
 * (page by page) is counted in share[POLICY_MAX_NODES]. */
struct il_runs {
	size_t end;
	int count, last;
	size_t share[POLICY_MAX_NODES + 1];
	size_t off[MAX_RUNS], len[MAX_RUNS];
	int node[MAX_RUNS];
};

static struct il_runs I;

static void il_collect(void *ctx, size_t off, size_t len, int node)
{
	struct il_runs *r = ctx;

	assert_in_range(node + 1, 0, POLICY_MAX_NODES);
	assert_true(off == r->end);
	assert_true(len > 0);
	if (r->count > 0)
		assert_int_not_equal(node, r->last);
	if (r->count < MAX_RUNS) {
		r->off[r->count] = off;
		r->len[r->count] = len;
		r->node[r->count] = node;
	}
	r->count++;
	r->last = node;
	r->end = off + len;
	r->share[node < 0 ? POLICY_MAX_NODES : node] += len;
}

/* Cuts [addr, addr + len) over `nodes` from position `first` into I. */
static void il_cut(uintptr_t addr, size_t len, policy_nodemask_t nodes,
		   unsigned long first)
{
	int rc;

	memset(&I, 0, sizeof(I));
	rc = policy_interleave_runs(addr, len, nodes, first, il_collect, &I);
	assert_int_equal(rc, I.count);
	assert_true(I.end == len);
}

#define BASE ((uintptr_t)0x7f0000000000) /* on a 2 MiB boundary */

static void huge_pages_go_round_the_nodes_from_first(void **state)
{
	il_cut(BASE, 8 * MiB, NODES(0, 1), 1);
	assert_int_equal(I.count, 4);
	for (int i = 0; i < 4; i++) {
		assert_true(I.off[i] == i * UNIT && I.len[i] == UNIT);
		assert_int_equal(I.node[i], i % 2 ? 0 : 1);
	}
	assert_int_equal(policy_interleave_units(BASE, 8 * MiB, NODES(0, 1)), 4);
}

/* Where no whole huge page fits the kernel interleaves page by page. */
static void parts_outside_whole_huge_pages_are_interleaved_by_page(void **state)
{
	il_cut(BASE + 4096, 5 * MiB, NODES(0, 1, 2), 0);
	assert_int_equal(I.count, 3);
	assert_int_equal(I.node[0], -1);
	assert_true(I.len[0] == UNIT - 4096);
	assert_int_equal(I.node[1], 0);
	assert_true(I.len[1] == UNIT);
	assert_int_equal(I.node[2], -1);
	assert_int_equal(policy_interleave_units(BASE + 4096, 5 * MiB,
						 NODES(0, 1, 2)), 1);

	il_cut(BASE + 4096, UNIT, NODES(0, 1), 0);
	assert_int_equal(I.count, 1);
	assert_int_equal(I.node[0], -1);
	assert_int_equal(policy_interleave_units(BASE + 4096, UNIT, NODES(0, 1)), 0);
}

/* The case of the 2-node guest: jemalloc's extents of 2.5, 3 and 3.5 MiB,
 * one whole huge page each, taking the next positions in turn. */
static void ranges_taking_the_next_positions_alternate(void **state)
{
	static const size_t lens[] = {
		2 * MiB + MiB / 2, 3 * MiB, 3 * MiB + MiB / 2, 2 * MiB,
	};
	size_t per_node[2] = { 0, 0 };
	unsigned long next = 0;

	for (int i = 0; i < 4; i++) {
		uintptr_t addr = BASE - (uintptr_t)(i + 1) * 4 * MiB;
		unsigned long first = next;

		next += policy_interleave_units(addr, lens[i], NODES(0, 1));
		il_cut(addr, lens[i], NODES(0, 1), first);
		assert_int_equal(I.node[0], i % 2);
		per_node[0] += I.share[0];
		per_node[1] += I.share[1];
	}
	assert_true(per_node[0] == 4 * MiB && per_node[1] == 4 * MiB);
}

static void nodes_are_taken_in_order_of_their_ids(void **state)
{
	const int want[] = { 5, 9, 1, 5, 9, 1 };

	il_cut(BASE, 12 * MiB, NODES(1, 5, 9), 1);
	assert_int_equal(I.count, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(I.node[i], want[i]);
}

static void one_node_makes_one_run_per_part(void **state)
{
	il_cut(BASE, 64 * MiB, NODES(3), 7);
	assert_int_equal(I.count, 1);
	assert_int_equal(I.node[0], 3);
	il_cut(BASE, 64 * MiB + 4096, NODES(3), 0);
	assert_int_equal(I.count, 2);
	assert_int_equal(I.node[1], -1);
}

/* Each run is a VMA: a big range grows the unit as the weighted runs do. */
static void one_tib_by_huge_page_needs_about_512_runs(void **state)
{
	il_cut(BASE, 1 * TiB, NODES(0, 1), 0);
	assert_in_range(I.count, 2, 2 * 257);
	assert_true(I.share[0] == 512 * GiB && I.share[1] == 512 * GiB);
	assert_in_range(policy_interleave_units(BASE, 1 * TiB, NODES(0, 1)),
			2, 2 * 257);
}

static void no_node_or_no_length(void **state)
{
	assert_int_equal(policy_interleave_runs(BASE, 8 * MiB, 0, 0, nothing,
						NULL), -EINVAL);
	assert_int_equal(policy_interleave_units(BASE, 8 * MiB, 0), 0);
	assert_int_equal(policy_interleave_runs(BASE, 0, NODES(0, 1), 0,
						nothing, NULL), 0);
	assert_int_equal(policy_interleave_units(BASE, 0, NODES(0, 1)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_cover_the_range_in_order),
		cmocka_unit_test(runs_start_on_2mib_boundaries),
		cmocka_unit_test(runs_of_an_unaligned_range_end_on_its_huge_pages),
		cmocka_unit_test(three_to_one_on_256mib_is_75_25_exactly),
		cmocka_unit_test(equal_weights_on_four_nodes_split_in_quarters),
		cmocka_unit_test(runs_go_round_the_nodes),
		cmocka_unit_test(uneven_lengths_keep_shares_within_one_cycle),
		cmocka_unit_test(short_range_is_one_run_on_the_first_node),
		cmocka_unit_test(empty_range_has_no_runs),
		cmocka_unit_test(no_weight_is_einval),
		cmocka_unit_test(one_tib_on_two_nodes_needs_about_512_runs),
		cmocka_unit_test(run_count_is_bounded_per_node),
		cmocka_unit_test(huge_range_does_not_overflow),
		cmocka_unit_test(stream_position_picks_where_the_cycle_starts),
		cmocka_unit_test(short_ranges_share_out_by_weight),
		cmocka_unit_test(ranges_with_a_tail_keep_the_proportion),
		cmocka_unit_test(huge_pages_go_round_the_nodes_from_first),
		cmocka_unit_test(parts_outside_whole_huge_pages_are_interleaved_by_page),
		cmocka_unit_test(ranges_taking_the_next_positions_alternate),
		cmocka_unit_test(nodes_are_taken_in_order_of_their_ids),
		cmocka_unit_test(one_node_makes_one_run_per_part),
		cmocka_unit_test(one_tib_by_huge_page_needs_about_512_runs),
		cmocka_unit_test(no_node_or_no_length),
	};

	return cmocka_run_group_tests_name("policy/place.c", tests, NULL, NULL);
}
