/*
 * policy_resolve: turn a config and a topology into a plan — which arena
 * sets exist, how the kernel is asked to place each one's memory, and which
 * set a thread running on each CPU uses.
 */
#include "policy/policy.h"

#include <errno.h>
#include <string.h>

static int popcount(policy_nodemask_t m)
{
	return __builtin_popcountll(m);
}

/* Reports which requested nodes were dropped and why; returns what is left. */
/* base_name: what made `usable` what it is, for the message. */
static policy_nodemask_t narrow(const struct policy_topology *t,
				policy_nodemask_t want, policy_nodemask_t usable,
				const char *base_name, const char *var,
				const char *text, policy_warn_fn warn, void *ctx,
				policy_nodemask_t fallback)
{
	char outside[64];

	policy_nodemask_t left = want & usable;
	char fb[96];
	const char *why = NULL;

	if (want & ~t->online)
		why = "lists a node that does not exist";
	else if (want & ~t->allowed)
		why = "lists a node outside this process's allowed nodes (cpuset.mems)";
	else if (want & ~t->has_memory)
		why = "lists a node without memory";
	else if (want & ~usable) {
		strcpy(outside, "lists a node outside ");
		strncat(outside, base_name, sizeof(outside) - strlen(outside) - 1);
		why = outside;
	}
	if (left == 0) {
		policy_format_nodelist(fallback, fb, sizeof(fb));
		warn(ctx, var, text, why ? why : "selects no usable node", fb);
		return fallback;
	}
	if (why) {
		policy_format_nodelist(left, fb, sizeof(fb));
		warn(ctx, var, text, why, fb);
	}
	return left;
}

static void add_set(struct policy_plan *p, const struct policy_topology *t,
		    int node, enum policy_mpol mpol, policy_nodemask_t vmask)
{
	struct policy_set *s = &p->set[p->nr_sets++];
	policy_nodemask_t real = 0;

	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (vmask & policy_node_bit(n))
			real |= policy_node_bit(t->mem_node[n]);
	s->node = node;
	s->mpol = mpol;
	s->mask = real;
	s->vmask = vmask;
	s->cpus = 0;
}

static void map_cpus(struct policy_plan *p, const struct policy_topology *t)
{
	for (int c = 0; c < t->nr_cpus && c < POLICY_MAX_CPUS; c++) {
		int node = t->cpu_node[c], target, set = p->default_set;

		if (node < 0)
			continue;
		if (p->nr_sets > 1) {
			/* CPUs of a node without a set (memoryless, excluded)
			 * use the nearest node that has one. */
			target = policy_nearest(t, node, p->nodes);
			for (int i = 0; i < p->nr_sets; i++)
				if (p->set[i].node == target)
					set = i;
		}
		p->cpu_set[c] = (int8_t)set;
		p->set[set].cpus++;
	}
}

static void plan_inactive(struct policy_plan *p, const char *reason)
{
	p->active = false;
	p->reason = reason;
	p->nr_sets = 0;
}

static unsigned gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A node list variable read against `base`: syntax was checked when the
 * environment was read; what is left are nodes the machine cannot give. */
static policy_nodemask_t node_var(const struct policy_topology *t,
				  const char *var, const char *text,
				  policy_nodemask_t base, const char *base_name,
				  policy_warn_fn warn, void *ctx)
{
	policy_nodemask_t want;
	char fb[96];

	if (text == NULL)
		return base;
	if (policy_parse_nodelist(text, base, &want) == -ERANGE) {
		/* "+N" past the last node the list is relative to. */
		policy_format_nodelist(base, fb, sizeof(fb));
		warn(ctx, var, text, "counts past the last usable node", fb);
		return base;
	}
	return narrow(t, want, base, base_name, var, text, warn, ctx, base);
}

/* The interleave nodes of large blocks, within the plan's nodes (bind and
 * NUMASHIM_NODES limit them too), narrowed by the weights given. */
static policy_nodemask_t interleave_nodes(const struct policy_config *cfg,
					  const struct policy_topology *t,
					  policy_nodemask_t base,
					  const char *base_name,
					  policy_warn_fn warn, void *ctx,
					  bool *weighted)
{
	policy_nodemask_t il, given = 0;

	il = node_var(t, "NUMASHIM_INTERLEAVE_NODES", cfg->interleave_nodes_text,
		      base, base_name, warn, ctx);
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (cfg->weight[n])
			given |= policy_node_bit(n);
	*weighted = false;
	if (given & ~il) {
		warn(ctx, "NUMASHIM_INTERLEAVE_WEIGHTS", cfg->weights_text,
		     "gives a weight to a node large blocks are not interleaved "
		     "over", "equal weights");
	} else if (given) {
		/* Nodes listed without a weight get none: the list narrows. */
		il &= given;
		*weighted = true;
	}
	return il;
}

/* Under NUMASHIM_INTERLEAVE_MIN=off no block is large: the large blocks'
 * nodes and weights went unused without a word, a node that does not
 * exist too (found by a review). */
static void say_unused(const struct policy_config *cfg, policy_warn_fn warn,
		       void *ctx)
{
	static const char why[] = "has no effect with NUMASHIM_INTERLEAVE_MIN=off";

	if (cfg->interleave_nodes_text)
		warn(ctx, "NUMASHIM_INTERLEAVE_NODES", cfg->interleave_nodes_text,
		     why, "no large-block set");
	if (cfg->weights_text)
		warn(ctx, "NUMASHIM_INTERLEAVE_WEIGHTS", cfg->weights_text, why,
		     "no large-block set");
}

/* The set large blocks come from: interleaved over the interleave nodes,
 * with the weights mapped onto the real nodes (virtual nodes that share a
 * real one add up; sums past 255 are scaled down, keeping proportions). */
static void add_large_set(const struct policy_config *cfg,
			  const struct policy_topology *t, struct policy_plan *p,
			  const char *base_name, policy_warn_fn warn, void *ctx)
{
	unsigned sum[POLICY_MAX_NODES] = { 0 }, max = 0, first = 0, g = 0;
	policy_nodemask_t il;
	bool weighted;

	if (cfg->interleave_min == 0) {
		say_unused(cfg, warn, ctx);
		return;
	}
	/* Large mappings are placed from this size even without a set of
	 * their own (below): with the thread's node set then. */
	p->large_min = cfg->interleave_min;
	il = interleave_nodes(cfg, t, p->nodes, base_name, warn, ctx, &weighted);
	/* One node left of the plan's own nodes: large blocks already go
	 * where the policy puts them. One node the user named (a list other
	 * than "all", or the weights): there, as asked (a memory tier, say),
	 * bound as the policy binds a node (strictly under bind: the kernel's
	 * interleave over one node would take other nodes' pages when full). */
	if (popcount(il) < 2 && !t->fake) {
		if (!weighted && (cfg->interleave_nodes_text == NULL ||
				  strcmp(cfg->interleave_nodes_text, "all") == 0))
			return;
		add_set(p, t, -1, p->strict ? POLICY_MPOL_BIND
					    : POLICY_MPOL_PREFERRED, il);
	} else {
		add_set(p, t, -1, POLICY_MPOL_INTERLEAVE, il);
	}
	p->large_set = p->nr_sets - 1;
	p->vweighted = weighted;
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		if (!(il & policy_node_bit(n)))
			continue;
		sum[t->mem_node[n]] += weighted ? cfg->weight[n] : 1;
		if (sum[t->mem_node[n]] > max)
			max = sum[t->mem_node[n]];
	}
	/* Lowest terms first (300:150 is 2:1), then scale what still does
	 * not fit a byte. */
	for (int r = 0; r < POLICY_MAX_NODES; r++)
		g = gcd(g, sum[r]);
	max /= g ? g : 1;
	for (int r = 0; r < POLICY_MAX_NODES; r++) {
		unsigned w = g ? sum[r] / g : 0;

		if (w == 0)
			continue;
		if (max > 255)
			w = (w * 255 + max / 2) / max;
		p->weight[r] = (uint8_t)(w ? w : 1);
		if (first == 0)
			first = p->weight[r];
		else if (p->weight[r] != first)
			p->weighted = true;
	}
}

void policy_resolve(const struct policy_config *cfg,
		    const struct policy_topology *t, struct policy_plan *p,
		    policy_warn_fn warn, void *ctx)
{
	policy_nodemask_t usable = t->online & t->has_memory & t->allowed;
	policy_nodemask_t nodes, real = 0;
	enum policy_mpol per_node = cfg->strict ? POLICY_MPOL_BIND
						: POLICY_MPOL_PREFERRED;
	enum policy_mode mode = cfg->mode;
	const char *ptext = cfg->policy_text ? cfg->policy_text : "";
	const char *base_name;

	memset(p, 0, sizeof(*p));
	p->nr_cpus = t->nr_cpus < POLICY_MAX_CPUS ? t->nr_cpus : POLICY_MAX_CPUS;
	memset(p->cpu_set, -1, sizeof(p->cpu_set));
	p->large_set = -1;
	p->mmap = cfg->mmap;
	p->threads = cfg->threads;
	if (usable == 0)
		usable = t->has_memory ? t->has_memory : policy_node_bit(0);
	/* Before the requests: against a topology cut short, "node 1 does
	 * not exist" would be said of a node that does. */
	if (t->unsupported)
		return plan_inactive(p, mode == POLICY_OFF ? "NUMASHIM_POLICY=off"
							   : t->unsupported);

	/* Requests first, so an impossible one is reported on any machine. */
	nodes = node_var(t, "NUMASHIM_NODES", cfg->nodes_text, usable,
			 "NUMASHIM_NODES", warn, ctx);
	if (mode == POLICY_PREFERRED &&
	    !(nodes & policy_node_bit(cfg->preferred_node))) {
		warn(ctx, "NUMASHIM_POLICY", ptext,
		     cfg->preferred_node < t->nr_nodes &&
		     (t->online & policy_node_bit(cfg->preferred_node))
			     ? "preferred node has no memory, is not allowed or "
			       "is outside NUMASHIM_NODES"
			     : "preferred node does not exist",
		     "local");
		mode = POLICY_LOCAL;
	} else if (mode == POLICY_PREFERRED) {
		nodes = policy_node_bit(cfg->preferred_node);
	}
	if (mode == POLICY_BIND) {
		policy_nodemask_t want = cfg->bind_nodes;
		char fb[96];

		/* Read again against the usable nodes: "+N" counts them. */
		if (cfg->bind_text &&
		    policy_parse_nodelist(cfg->bind_text, usable, &want) == -ERANGE) {
			policy_format_nodelist(nodes, fb, sizeof(fb));
			warn(ctx, "NUMASHIM_POLICY", ptext,
			     "counts past the last usable node", fb);
			want = nodes;
		}
		nodes = narrow(t, want, nodes, "NUMASHIM_NODES", "NUMASHIM_POLICY",
			       ptext, warn, ctx, nodes);
		per_node = POLICY_MPOL_BIND;
	}
	p->mode = mode;
	p->strict = per_node == POLICY_MPOL_BIND;
	/* What narrows the large-block nodes besides the machine (the
	 * policy as it came out: a preferred node it could not have is
	 * local). */
	base_name = mode == POLICY_PREFERRED || mode == POLICY_BIND
			    ? "the nodes of NUMASHIM_POLICY"
			    : "NUMASHIM_NODES";
	p->nodes = nodes;
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (nodes & policy_node_bit(n))
			real |= policy_node_bit(t->mem_node[n]);

	if (mode == POLICY_OFF)
		return plan_inactive(p, "NUMASHIM_POLICY=off");
	if (popcount(usable) < 2 && !t->fake) {
		bool unused;

		/* Still say what could not be had (the large-block nodes). */
		if (cfg->interleave_min)
			interleave_nodes(cfg, t, nodes, base_name, warn, ctx,
					 &unused);
		else
			say_unused(cfg, warn, ctx);
		return plan_inactive(p, "one NUMA node with memory: nothing to place");
	}
	if (mode == POLICY_INTERLEAVE && popcount(real) < 2 && !t->fake) {
		/* NUMASHIM_NODES left one node: all memory there, as asked. */
		char one[96] = "preferred:";

		policy_format_nodelist(nodes, one + strlen(one),
				       sizeof(one) - strlen(one));
		warn(ctx, "NUMASHIM_POLICY", ptext,
		     "interleaves over one node (NUMASHIM_NODES)", one);
		p->mode = mode = POLICY_PREFERRED;
	}
	if (mode == POLICY_INTERLEAVE) {
		add_set(p, t, -1, POLICY_MPOL_INTERLEAVE, nodes);
	} else {
		/* local, preferred, bind: one set per node of the plan. */
		for (int n = 0; n < POLICY_MAX_NODES; n++)
			if (nodes & policy_node_bit(n))
				add_set(p, t, n, per_node, policy_node_bit(n));
	}
	map_cpus(p, t);
	add_large_set(cfg, t, p, base_name, warn, ctx);
	p->active = true;
}
