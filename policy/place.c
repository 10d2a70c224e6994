/*
 * Placement arithmetic: weighted interleave runs, interleave by huge page
 * and the node a new thread goes to under NUMASHIM_THREADS. Pure
 * functions, unit-tested.
 */
#include "policy/policy.h"

#include <errno.h>

#define RUN_UNIT ((size_t)2 << 20) /* 2 MiB: one huge page */
#define MAX_CYCLES 256

/* The run unit for a range: 2 MiB, doubled until the range needs at most
 * MAX_CYCLES cycles of `per_cycle` units. */
static size_t run_unit(size_t len, unsigned per_cycle)
{
	size_t unit = RUN_UNIT;

	while (len / (unit * per_cycle) > MAX_CYCLES)
		unit *= 2;
	return unit;
}

int policy_weighted_runs(uintptr_t addr, size_t len,
			 const uint8_t weight[POLICY_MAX_NODES], uint64_t before,
			 void (*fn)(void *ctx, size_t off, size_t len, int node),
			 void *ctx)
{
	unsigned total = 0, pos, left;
	/* The bytes of the first huge page before the range: the first run
	 * is that much shorter, so every later run starts on a huge page
	 * (a mapping's address is not 2 MiB-aligned: runs cut from its start
	 * put a VMA boundary inside every huge page of it). */
	size_t unit, off = 0, lead = addr & (RUN_UNIT - 1);
	int runs = 0, n = 0;

	for (int i = 0; i < POLICY_MAX_NODES; i++)
		total += weight[i];
	if (total == 0)
		return -EINVAL;
	unit = run_unit(len, total);
	/* The cycle position where the stream is (in whole units: runs start
	 * on unit boundaries of the range), its node and that node's units
	 * left. */
	pos = (unsigned)(before / unit % total);
	while (pos >= weight[n])
		pos -= weight[n++];
	left = weight[n] - pos;
	while (off < len) {
		size_t l = unit * left - lead;

		lead = 0;
		if (l > len - off)
			l = len - off;
		fn(ctx, off, l, n);
		off += l;
		runs++;
		do
			n = (n + 1) % POLICY_MAX_NODES;
		while (weight[n] == 0);
		left = weight[n];
	}
	return runs;
}

/* The whole huge pages of [addr, addr + len): from *lo to *hi (offsets),
 * cut into units of the returned size. */
static size_t whole_pages(uintptr_t addr, size_t len, unsigned nnodes,
			  size_t *lo, size_t *hi)
{
	uintptr_t first = (addr + RUN_UNIT - 1) & ~(RUN_UNIT - 1);
	uintptr_t end = addr + len < addr ? UINTPTR_MAX : addr + len;

	*lo = *hi = 0;
	if ((end & ~(RUN_UNIT - 1)) <= first)
		return RUN_UNIT;
	*lo = first - addr;
	*hi = (end & ~(RUN_UNIT - 1)) - addr;
	return run_unit(*hi - *lo, nnodes);
}

unsigned long policy_interleave_units(uintptr_t addr, size_t len,
				      policy_nodemask_t nodes)
{
	unsigned nn = (unsigned)__builtin_popcountll(nodes);
	size_t lo, hi, unit;

	if (nn == 0)
		return 0;
	unit = whole_pages(addr, len, nn, &lo, &hi);
	return (hi - lo + unit - 1) / unit;
}

/* Calls fn for [off, off + l) on node, merged with the run before it when
 * that is on the same node; l == 0 flushes the last run. */
struct merge {
	void (*fn)(void *ctx, size_t off, size_t len, int node);
	void *ctx;
	size_t off, len;
	int node, runs;
};

static void emit(struct merge *m, size_t off, size_t l, int node)
{
	if (m->len && (l == 0 || node != m->node)) {
		m->fn(m->ctx, m->off, m->len, m->node);
		m->runs++;
		m->len = 0;
	}
	if (l == 0)
		return;
	if (m->len == 0) {
		m->off = off;
		m->node = node;
	}
	m->len += l;
}

int policy_interleave_runs(uintptr_t addr, size_t len, policy_nodemask_t nodes,
			   unsigned long first,
			   void (*fn)(void *ctx, size_t off, size_t len, int node),
			   void *ctx)
{
	int ids[POLICY_MAX_NODES], nn = 0;
	struct merge m = { fn, ctx, 0, 0, -1, 0 };
	size_t lo, hi, unit;

	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (nodes & policy_node_bit(n))
			ids[nn++] = n;
	if (nn == 0)
		return -EINVAL;
	unit = whole_pages(addr, len, (unsigned)nn, &lo, &hi);
	if (hi == 0) {
		emit(&m, 0, len, -1);
	} else {
		emit(&m, 0, lo, -1);
		for (size_t off = lo; off < hi; off += unit, first++)
			emit(&m, off, unit < hi - off ? unit : hi - off,
			     ids[first % (unsigned long)nn]);
		emit(&m, hi, len - hi, -1);
	}
	emit(&m, len, 0, -1);
	return m.runs;
}

int policy_thread_node(const struct policy_plan *p, enum policy_threads mode,
		       unsigned long k, const int cpus_of[POLICY_MAX_NODES])
{
	int nodes[POLICY_MAX_NODES], nn = 0;
	unsigned long cycle = 0;

	if (mode == POLICY_THREADS_NONE)
		return -1;
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if ((p->nodes & policy_node_bit(n)) && cpus_of[n] > 0) {
			nodes[nn++] = n;
			cycle += (unsigned long)cpus_of[n];
		}
	if (nn == 0)
		return -1;
	if (mode == POLICY_THREADS_SPREAD)
		return nodes[k % (unsigned long)nn];
	/* compact: the k-th thread of each cycle of cycle threads. */
	k %= cycle;
	for (int i = 0; i < nn; i++) {
		if (k < (unsigned long)cpus_of[nodes[i]])
			return nodes[i];
		k -= (unsigned long)cpus_of[nodes[i]];
	}
	return nodes[nn - 1];
}
