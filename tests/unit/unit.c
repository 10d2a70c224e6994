#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "(null)");
}

void warnlog_reset(struct warnlog *log)
{
	memset(log, 0, sizeof(*log));
}

void warnlog_fn(void *ctx, const char *var, const char *value, const char *why,
		const char *fallback)
{
	struct warnlog *log = ctx;
	int i = log->count++;

	if (i >= UNIT_MAX_WARNINGS)
		return;
	copy(log->w[i].var, sizeof(log->w[i].var), var);
	copy(log->w[i].value, sizeof(log->w[i].value), value);
	copy(log->w[i].why, sizeof(log->w[i].why), why);
	copy(log->w[i].fallback, sizeof(log->w[i].fallback), fallback);
}

void assert_one_warning(const struct warnlog *log, const char *var,
			const char *value)
{
	for (int i = 0; i < log->count && i < UNIT_MAX_WARNINGS; i++)
		print_message("warning %d: %s=\"%s\": %s; using %s\n", i,
			      log->w[i].var, log->w[i].value, log->w[i].why,
			      log->w[i].fallback);
	assert_int_equal(log->count, 1);
	assert_string_equal(log->w[0].var, var);
	if (value)
		assert_string_equal(log->w[0].value, value);
	assert_true(log->w[0].why[0] != '\0');
	assert_true(log->w[0].fallback[0] != '\0');
}

void config_from(struct policy_config *cfg, char *const *envp)
{
	struct warnlog log;

	warnlog_reset(&log);
	assert_int_equal(policy_config_from_env(envp, cfg, warnlog_fn, &log), 0);
	assert_int_equal(log.count, 0);
}

/* The large-block set serves large blocks only: it is the last set, has no
 * CPUs, and its weights are exactly on the real nodes of its mask. */
static void assert_large_set_usable(const struct policy_plan *p,
				    const struct policy_topology *t)
{
	const struct policy_set *s = &p->set[p->large_set];
	bool unequal = false;
	int first = 0;

	assert_int_equal(p->large_set, p->nr_sets - 1);
	assert_int_not_equal(p->default_set, p->large_set);
	assert_int_equal(s->node, -1);
	/* Interleaved; one node's (named by the user) bound as a node is. */
	if (__builtin_popcountll(s->mask) >= 2 || t->fake)
		assert_int_equal(s->mpol, POLICY_MPOL_INTERLEAVE);
	else
		assert_int_equal(s->mpol, p->strict ? POLICY_MPOL_BIND
						    : POLICY_MPOL_PREFERRED);
	assert_int_equal(s->cpus, 0);
	assert_true(p->large_min >= 4096);
	for (int c = 0; c < t->nr_cpus && c < POLICY_MAX_CPUS; c++)
		assert_int_not_equal(policy_set_for_cpu(p, c), p->large_set);
	for (int r = 0; r < POLICY_MAX_NODES; r++) {
		bool in = (s->mask & policy_node_bit(r)) != 0;

		assert_int_equal(p->weight[r] != 0, in);
		if (!in)
			continue;
		if (first == 0)
			first = p->weight[r];
		else if (p->weight[r] != first)
			unequal = true;
	}
	assert_int_equal(p->weighted, unequal);
}

void assert_plan_usable(const struct policy_plan *p,
			const struct policy_topology *t)
{
	policy_nodemask_t usable = t->has_memory & t->allowed, real_usable = 0;
	int total = 0, present = 0;

	if (!p->active) {
		assert_non_null(p->reason);
		assert_true(p->reason[0] != '\0');
		assert_int_equal(p->large_set, -1);
		return;
	}
	/* Real nodes behind the usable (possibly virtual) nodes. */
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (usable & policy_node_bit(n))
			real_usable |= policy_node_bit(t->mem_node[n]);
	assert_in_range(p->nr_sets, 1, POLICY_MAX_SETS);
	assert_in_range(p->default_set, 0, p->nr_sets - 1);
	for (int s = 0; s < p->nr_sets; s++) {
		assert_true(p->set[s].mask != 0);
		assert_int_equal(p->set[s].mask & ~real_usable, 0);
		assert_true(p->set[s].mpol != POLICY_MPOL_NONE);
		total += p->set[s].cpus;
	}
	for (int c = 0; c < t->nr_cpus && c < POLICY_MAX_CPUS; c++) {
		int s = policy_set_for_cpu(p, c);

		if (t->cpu_node[c] < 0)
			continue;
		present++;
		assert_in_range(s, 0, p->nr_sets - 1);
		assert_int_equal(p->cpu_set[c], s);
	}
	assert_int_equal(total, present);
	/* A CPU the plan has never heard of still gets a set (volatile: the
	 * compiler must not see the out-of-range index it is guarded from). */
	{
		volatile int unknown = POLICY_MAX_CPUS + 5;

		assert_in_range(policy_set_for_cpu(p, unknown), 0, p->nr_sets - 1);
		assert_in_range(policy_set_for_cpu(p, -1), 0, p->nr_sets - 1);
	}
	if (p->large_set >= 0)
		assert_large_set_usable(p, t);
	else
		assert_int_equal(p->large_set, -1);
}

int plan_set_of_node(const struct policy_plan *p, int node)
{
	for (int s = 0; s < p->nr_sets; s++)
		if (p->set[s].node == node)
			return s;
	return -1;
}

int plan_node_sets(const struct policy_plan *p)
{
	int n = 0;

	for (int s = 0; s < p->nr_sets; s++)
		if (p->set[s].node >= 0)
			n++;
	return n;
}

policy_nodemask_t nodes_of(const int *ids)
{
	policy_nodemask_t m = 0;

	for (; *ids >= 0; ids++)
		m |= policy_node_bit(*ids);
	return m;
}

char unit_case[256];
bool unit_quiet;

int unit_print_case(void **state)
{
	if (unit_case[0])
		print_message("failing case: %s\n", unit_case);
	unit_case[0] = '\0';
	unit_quiet = false;
	return 0;
}

void resolve_env(struct resolved *r, const struct policy_topology *t,
		 char *const *envp)
{
	config_from(&r->cfg, envp);
	warnlog_reset(&r->log);
	memset(&r->plan, 0x5a, sizeof(r->plan));
	policy_resolve(&r->cfg, t, &r->plan, warnlog_fn, &r->log);
	for (int i = 0; !unit_quiet && i < r->log.count && i < UNIT_MAX_WARNINGS;
	     i++)
		print_message("warning: %s=\"%s\": %s; using %s\n",
			      r->log.w[i].var, r->log.w[i].value,
			      r->log.w[i].why, r->log.w[i].fallback);
	assert_plan_usable(&r->plan, t);
}

void assert_set(const struct policy_plan *p, int s, int node,
		enum policy_mpol mpol, policy_nodemask_t mask)
{
	assert_in_range(s, 0, p->nr_sets - 1);
	assert_int_equal(p->set[s].node, node);
	assert_int_equal(p->set[s].mpol, mpol);
	assert_int_equal(p->set[s].mask, mask);
}

void assert_large_set(const struct resolved *r, policy_nodemask_t mask)
{
	assert_true(r->plan.active);
	assert_int_equal(r->plan.large_set, r->plan.nr_sets - 1);
	assert_set(&r->plan, r->plan.large_set, -1, POLICY_MPOL_INTERLEAVE, mask);
}

void assert_weights(const struct resolved *r, int w0, int w1, int w2, int w3)
{
	const int want[4] = { w0, w1, w2, w3 };

	for (int n = 0; n < 4; n++)
		assert_int_equal(r->plan.weight[n], want[n]);
	for (int n = 4; n < POLICY_MAX_NODES; n++)
		assert_int_equal(r->plan.weight[n], 0);
}

void assert_cpus_use(const struct policy_plan *p, int lo, int hi, int node)
{
	int s = plan_set_of_node(p, node);

	assert_true(s >= 0);
	for (int c = lo; c <= hi; c++) {
		if (policy_set_for_cpu(p, c) != s)
			print_message("cpu %d is not on node %d's set\n", c, node);
		assert_int_equal(policy_set_for_cpu(p, c), s);
	}
}

/* ------------------------------------------------ option tests */

const struct policy_option *option_named(const char *name)
{
	for (size_t i = 0; i < policy_option_count; i++)
		if (strcmp(policy_options[i].name, name) == 0)
			return &policy_options[i];
	fail_msg("%s is not in policy_options[]", name);
	return NULL;
}

void assert_config_default(const struct policy_config *c)
{
	assert_int_equal(c->mode, POLICY_LOCAL);
	assert_int_equal(c->preferred_node, 0);
	assert_int_equal(c->bind_nodes, 0);
	assert_int_equal(c->nodes, ~(policy_nodemask_t)0);
	assert_null(c->nodes_text);
	assert_null(c->bind_text);
	assert_false(c->strict);
	assert_int_equal(c->verbose, 0);
	assert_int_equal(c->fake_nodes, 0);
	assert_int_equal(c->interleave_min, POLICY_INTERLEAVE_MIN_DEFAULT);
	assert_int_equal(c->interleave_nodes, ~(policy_nodemask_t)0);
	assert_null(c->interleave_nodes_text);
	for (int n = 0; n < POLICY_MAX_NODES; n++)
		assert_int_equal(c->weight[n], 0);
	assert_null(c->weights_text);
	assert_int_equal(c->mmap, POLICY_MMAP_INTERLEAVE);
	assert_int_equal(c->threads, POLICY_THREADS_NONE);
	assert_true(c->stats);
	assert_null(c->policy_text);
}

/* NAME=value alone in the environment. */
static int from_one(const char *name, const char *value,
		    struct policy_config *cfg, struct warnlog *log)
{
	char entry[256];
	char *envp[] = { entry, NULL };

	snprintf(entry, sizeof(entry), "%s=%s", name, value);
	warnlog_reset(log);
	return policy_config_from_env(envp, cfg, warnlog_fn, log);
}

void option_good(const char *name, const char *value,
		 struct policy_config *cfg)
{
	struct warnlog log;

	print_message("%s=\"%s\"\n", name, value);
	assert_int_equal(from_one(name, value, cfg, &log), 0);
	assert_int_equal(log.count, 0);
}

void option_bad_why(const char *name, const char *value, const char *why)
{
	struct policy_config cfg;
	struct warnlog log;

	print_message("%s=\"%s\"\n", name, value);
	assert_int_equal(from_one(name, value, &cfg, &log), 1);
	assert_one_warning(&log, name, value);
	assert_string_equal(log.w[0].fallback, option_named(name)->def);
	if (why)
		assert_string_equal(log.w[0].why, why);
	assert_config_default(&cfg);
}

void option_bad(const char *name, const char *value)
{
	option_bad_why(name, value, NULL);
}
