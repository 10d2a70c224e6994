/*
 * Shared pieces of the cmocka unit tests: the cmocka include preamble, a
 * policy_warn_fn that records what it is told, and the invariants every
 * resolved plan must satisfy.
 */
#ifndef NUMASHIM_TESTS_UNIT_UNIT_H
#define NUMASHIM_TESTS_UNIT_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy/policy.h"

#define UNIT_MAX_WARNINGS 8

/* Copies of the strings handed to the warn callback (the callers may pass
 * stack buffers). */
struct warnlog {
	int count;
	struct {
		char var[64], value[128], why[160], fallback[128];
	} w[UNIT_MAX_WARNINGS];
};

void warnlog_reset(struct warnlog *log);
/* A policy_warn_fn; ctx is a struct warnlog. */
void warnlog_fn(void *ctx, const char *var, const char *value, const char *why,
		const char *fallback);
/* Asserts exactly one warning, about `var` holding `value` (any value when
 * `value` is NULL). */
void assert_one_warning(const struct warnlog *log, const char *var,
			const char *value);

/* A config from an environment vector (NULL-terminated); asserts that no
 * warning was reported. */
void config_from(struct policy_config *cfg, char *const *envp);

/*
 * An active plan is usable: it has 1..POLICY_MAX_SETS sets, every set has a
 * non-empty mask of real nodes with memory that the process may use, every
 * present CPU maps to a valid set, the per-set CPU counts add up, and
 * default_set is a valid set. A large-block set (large_set >= 0) is the
 * last set, interleaved, without CPUs (no CPU maps to it, and it is not the
 * default), with large_min >= 4K, a weight on exactly the real nodes of its
 * mask, and weighted set exactly when those weights differ. An inactive
 * plan names its reason and has no large set.
 */
void assert_plan_usable(const struct policy_plan *p,
			const struct policy_topology *t);

/* The index of the first set whose home node is `node`, or -1. */
int plan_set_of_node(const struct policy_plan *p, int node);
/* How many sets have a home node (the per-node sets of local, bind and
 * preferred; interleaved sets have none). */
int plan_node_sets(const struct policy_plan *p);

/* A config read from an environment, resolved against a topology. */
struct resolved {
	struct policy_config cfg;
	struct policy_plan plan;
	struct warnlog log;
};

/* Set by loops over many cases: what is being checked now, printed by
 * unit_print_case (a teardown) when a case fails; unit_quiet silences the
 * per-case output meanwhile. */
extern char unit_case[256];
extern bool unit_quiet;
int unit_print_case(void **state);

#define ENV(...) ((char *[]){ __VA_ARGS__, NULL })
/* Reads envp (which must parse without warnings), resolves it against t
 * into r, and asserts the plan is usable. The envp strings must outlive r. */
void resolve_env(struct resolved *r, const struct policy_topology *t,
		 char *const *envp);

/* Asserts set s of the plan: home node, placement and real node mask. */
void assert_set(const struct policy_plan *p, int s, int node,
		enum policy_mpol mpol, policy_nodemask_t mask);
/* Asserts that threads on CPUs lo..hi use the set whose home is `node`. */
void assert_cpus_use(const struct policy_plan *p, int lo, int hi, int node);
/* Asserts r's plan has a large set, the last one, interleaved over real
 * nodes `mask`. */
void assert_large_set(const struct resolved *r, policy_nodemask_t mask);
/* Asserts r's plan's weight per real node: nodes 0..3 as given, 0 after. */
void assert_weights(const struct resolved *r, int w0, int w1, int w2, int w3);

#define NODES(...) nodes_of((int[]){ __VA_ARGS__, -1 })
/* A mask from a -1-terminated list of node ids. */
policy_nodemask_t nodes_of(const int *ids);

/* ------------------------------------------------ option tests */

/* The table entry of option `name` (fails the test when there is none). */
const struct policy_option *option_named(const char *name);
/* Asserts that every field of cfg holds its default. */
void assert_config_default(const struct policy_config *c);
/* NAME=value alone in the environment parses without a warning into cfg. */
void option_good(const char *name, const char *value, struct policy_config *cfg);
/* NAME=value alone gives exactly one warning naming the variable and the
 * value, whose fallback is the option's default text, and the config stays
 * the default. */
void option_bad(const char *name, const char *value);
/* The same, and the warning's reason must be `why`. */
void option_bad_why(const char *name, const char *value, const char *why);

#endif
