/*
 * Placement arithmetic: weighted interleave runs and the node a new thread
 * goes to under NUMASHIM_THREADS. Pure functions, unit-tested.
 */
#include "policy/policy.h"

#include <errno.h>

#define RUN_UNIT ((size_t)2 << 20) /* 2 MiB: one huge page */
#define MAX_CYCLES 256

int policy_weighted_runs(size_t len, const uint8_t weight[POLICY_MAX_NODES],
			 void (*fn)(void *ctx, size_t off, size_t len, int node),
			 void *ctx)
{
	unsigned total = 0;
	size_t unit = RUN_UNIT, off = 0;
	int runs = 0;

	for (int n = 0; n < POLICY_MAX_NODES; n++)
		total += weight[n];
	if (total == 0)
		return -EINVAL;
	/* Grow the unit so the range needs at most MAX_CYCLES cycles. */
	while (len / (unit * total) > MAX_CYCLES)
		unit *= 2;
	while (off < len) {
		for (int n = 0; n < POLICY_MAX_NODES && off < len; n++) {
			size_t l = unit * weight[n];

			if (l == 0)
				continue;
			if (l > len - off)
				l = len - off;
			fn(ctx, off, l, n);
			off += l;
			runs++;
		}
	}
	return runs;
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
