/*
 * How a set's memory is bound: the mbind calls behind every extent of
 * numashim's arenas (shim/arena.c's hook) and every mapping it places
 * (shim/mmap.c). A set is bound as one range, in weighted runs (a weighted
 * large set), or in runs of huge pages going round its nodes (an
 * interleaved set whose heap gets transparent huge pages).
 */
#include "shim/shim.h"
#include "shim/log.h"
#include "shim/os.h"

#include <errno.h>
#include <numaif.h>

static struct {
	int mbind_warned, range_warned;
	/* Interleave by huge page: whether the heap gets huge pages, and the
	 * next position in the rotation over the nodes of each arena's
	 * extents and of each set's other ranges (mappings). */
	bool huge;
	unsigned long arena_next[NS_MAX_ARENAS];
	unsigned long set_next[POLICY_MAX_SETS];
	uint64_t weighted_bytes;   /* cut into weighted runs so far */
} P;

static int mpol_mode(enum policy_mpol m)
{
	switch (m) {
	case POLICY_MPOL_PREFERRED: return MPOL_PREFERRED;
	case POLICY_MPOL_BIND: return MPOL_BIND;
	case POLICY_MPOL_INTERLEAVE: return MPOL_INTERLEAVE;
	default: return MPOL_DEFAULT;
	}
}

static void refused(int rc)
{
	/* EPERM under a seccomp profile, ENOSYS without NUMA, EINVAL outside
	 * cpuset.mems: keep running, placed by the kernel's first-touch
	 * default. Any other failure is this range's: ENOMEM when a new VMA
	 * would pass vm.max_map_count (one such failure turned placement off
	 * for good; found by a review). */
	if (rc == -EPERM || rc == -ENOSYS || rc == -EINVAL) {
		ns.mbind_ok = false;
		ns_log_once(&P.mbind_warned, "mbind", rc,
			    "memory is placed by first touch from now on");
	} else {
		ns_log_once(&P.range_warned, "mbind", rc,
			    "a range is left to first touch (said once)");
	}
}

struct run_ctx {
	char *base;
	int rc;
	policy_nodemask_t mask; /* for node -1: MPOL_INTERLEAVE */
};

static void bind_run(void *c, size_t off, size_t len, int node)
{
	struct run_ctx *r = c;
	int rc;

	if (r->rc)
		return;
	rc = os_mbind(r->base + off, len,
		      ns.plan.strict ? MPOL_BIND : MPOL_PREFERRED,
		      policy_node_bit(node), 0);
	if (rc)
		r->rc = rc;
}

/*
 * An interleaved heap with huge pages goes round the nodes by huge page
 * (policy_interleave_runs says why MPOL_INTERLEAVE does not do it). Each
 * extent takes the next positions of its arena's rotation, so an arena's
 * heap of 2-4 MiB extents alternates as one contiguous range would, and
 * a thread's heap is spread whatever the other arenas do meanwhile: with
 * one rotation per set, four threads of a 4-node guest, each with a few
 * huge pages, put 4.5 % of theirs on one node and 36 % on another. The
 * arenas of a set start at different positions (create_arena), so their
 * first extents (metadata) are not all on one node.
 */
static void il_run(void *c, size_t off, size_t len, int node)
{
	struct run_ctx *r = c;
	int rc;

	if (node >= 0) {
		bind_run(c, off, len, node);
		return;
	}
	if (r->rc)
		return;
	rc = os_mbind(r->base + off, len, MPOL_INTERLEAVE, r->mask, 0);
	if (rc)
		r->rc = rc;
}

static int interleave_runs(void *addr, size_t size, int set,
			   unsigned long *next)
{
	policy_nodemask_t mask = ns.plan.set[set].mask;
	unsigned long first = __atomic_fetch_add(
		next, policy_interleave_units((uintptr_t)addr, size, mask),
		__ATOMIC_RELAXED);
	struct run_ctx r = { addr, 0, mask };

	policy_interleave_runs((uintptr_t)addr, size, mask, first, il_run, &r);
	return r.rc;
}

/* How place_range binds a range of a set: not at all (no mbind, or a set
 * with no policy), as one range, or in runs (one VMA each): weighted runs
 * for a weighted large set, the rotation of huge pages for another
 * interleaved set. */
enum bind_how { BIND_NONE, BIND_WHOLE, BIND_WEIGHTED, BIND_HUGE_RUNS };

static enum bind_how bind_how(int set)
{
	const struct policy_set *s = &ns.plan.set[set];

	if (!ns.mbind_ok || s->mpol == POLICY_MPOL_NONE)
		return BIND_NONE;
	if (set == ns.plan.large_set && ns.plan.weighted)
		return BIND_WEIGHTED;
	if (P.huge && set != ns.plan.large_set && s->mpol == POLICY_MPOL_INTERLEAVE)
		return BIND_HUGE_RUNS;
	return BIND_WHOLE;
}

static int bind_whole(void *addr, size_t size, int set)
{
	const struct policy_set *s = &ns.plan.set[set];

	return os_mbind(addr, size, mpol_mode(s->mpol), s->mask, 0);
}

/* next: the rotation of the arena the range is an extent of, or NULL. */
static void place_range(void *addr, size_t size, int set, unsigned long *next)
{
	int rc;

	switch (bind_how(set)) {
	case BIND_NONE:
		return;
	case BIND_WEIGHTED: {
		struct run_ctx r = { addr, 0, 0 };
		uint64_t before = __atomic_fetch_add(&P.weighted_bytes, size,
						     __ATOMIC_RELAXED);

		policy_weighted_runs((uintptr_t)addr, size, ns.plan.weight,
				     before, bind_run, &r);
		rc = r.rc;
		break;
	}
	case BIND_HUGE_RUNS:
		rc = interleave_runs(addr, size, set,
				     next ? next : &P.set_next[set]);
		break;
	default: /* BIND_WHOLE */
		rc = bind_whole(addr, size, set);
		break;
	}
	if (rc)
		refused(rc);
}

void ns_place_extent(void *addr, size_t size, int set, unsigned ind)
{
	place_range(addr, size, set, ind < NS_MAX_ARENAS ? &P.arena_next[ind] : NULL);
}

void ns_place_arena_start(unsigned ind, unsigned long pos)
{
	if (ind < NS_MAX_ARENAS)
		P.arena_next[ind] = pos;
}

void ns_place_huge(bool on)
{
	P.huge = on;
}

void ns_place_range(void *addr, size_t size, int set)
{
	place_range(addr, size, set, NULL);
}


bool ns_place_splits(int set)
{
	enum bind_how how = bind_how(set);

	return how == BIND_WEIGHTED || how == BIND_HUGE_RUNS;
}

/* One policy over the whole range, with no runs: the kernel merges the
 * VMAs place_range's runs made (see mremap in shim/mmap.c). 0 or -errno. */
int ns_place_range_whole(void *addr, size_t size, int set)
{
	return bind_how(set) == BIND_NONE ? -EINVAL : bind_whole(addr, size, set);
}
