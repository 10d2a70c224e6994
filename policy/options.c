/*
 * The option table: every NUMASHIM_* variable, its default, its parser and
 * its help text. The shim parses `environ` with it; `numashim help env` and
 * the man page are generated from it, so they cannot drift apart.
 */
#include "policy/policy.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define ALL_NODES (~(policy_nodemask_t)0)

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* NUMASHIM_POLICY's values that turn numashim off ("none" is an alias),
 * read alike by the secure-mode check below. */
static bool mode_is_off(const char *v)
{
	return strcmp(v, "off") == 0 || strcmp(v, "none") == 0;
}

/* A small decimal integer in [lo, hi]. */
static int parse_int(const char *v, int lo, int hi, int *out)
{
	long n = 0;

	if (*v == '\0')
		return -EINVAL;
	for (const char *s = v; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		n = n * 10 + (*s - '0');
		if (n > hi)
			return -ERANGE;
	}
	if (n < lo)
		return -ERANGE;
	*out = (int)n;
	return 0;
}

static int opt_policy(const char *v, struct policy_config *cfg, const char **why)
{
	*why = "not one of local, interleave, preferred:N, bind:NODES, off";
	if (strcmp(v, "local") == 0 || strcmp(v, "default") == 0) {
		cfg->mode = POLICY_LOCAL;
		return 0;
	}
	if (strcmp(v, "interleave") == 0) {
		cfg->mode = POLICY_INTERLEAVE;
		cfg->policy_text = v;
		return 0;
	}
	if (mode_is_off(v)) {
		cfg->mode = POLICY_OFF;
		return 0;
	}
	if (strncmp(v, "preferred:", 10) == 0) {
		int node;

		if (parse_int(v + 10, 0, POLICY_MAX_NODES - 1, &node)) {
			*why = "preferred:N needs one node number 0-63";
			return -EINVAL;
		}
		cfg->mode = POLICY_PREFERRED;
		cfg->preferred_node = node;
		cfg->policy_text = v;
		return 0;
	}
	if (strncmp(v, "bind:", 5) == 0) {
		policy_nodemask_t mask;

		if (policy_parse_nodelist(v + 5, ALL_NODES, &mask) || mask == 0) {
			*why = "bind:NODES needs a node list such as 0-1,3";
			return -EINVAL;
		}
		cfg->mode = POLICY_BIND;
		cfg->bind_nodes = mask;
		cfg->bind_text = v + 5;
		cfg->policy_text = v;
		return 0;
	}
	return -EINVAL;
}

static int opt_nodes(const char *v, struct policy_config *cfg, const char **why)
{
	policy_nodemask_t mask;
	int rc = policy_parse_nodelist(v, ALL_NODES, &mask);

	if (rc == -ERANGE) {
		*why = "node number out of range 0-63";
		return -EINVAL;
	}
	if (rc || mask == 0) {
		*why = rc ? "not a node list (numactl syntax: all, 0-3,5, !1)"
			  : "the list selects no node";
		return -EINVAL;
	}
	cfg->nodes = mask;
	cfg->nodes_text = v;
	return 0;
}

static int opt_strict(const char *v, struct policy_config *cfg, const char **why)
{
	*why = "not a boolean (0/1, yes/no, true/false, on/off)";
	return parse_bool(v, &cfg->strict);
}

static int opt_verbose(const char *v, struct policy_config *cfg, const char **why)
{
	bool b;

	*why = "not 0, 1, 2 or a boolean";
	if (parse_int(v, 0, 2, &cfg->verbose) == 0)
		return 0;
	if (parse_bool(v, &b))
		return -EINVAL;
	cfg->verbose = b;
	return 0;
}

static int opt_fake_nodes(const char *v, struct policy_config *cfg,
			  const char **why)
{
	*why = "not a node count 0-64";
	return parse_int(v, 0, POLICY_MAX_NODES, &cfg->fake_nodes) ? -EINVAL : 0;
}

static int opt_interleave_min(const char *v, struct policy_config *cfg,
			      const char **why)
{
	size_t n;
	int rc;

	*why = "not a size (e.g. 64M, 1G) or off";
	if (strcmp(v, "off") == 0) {
		cfg->interleave_min = 0;
		return 0;
	}
	if ((rc = policy_parse_size(v, &n)) != 0) {
		if (rc == -ERANGE)
			*why = "larger than 16E (2^64 - 1 bytes)";
		return -EINVAL;
	}
	if (n < 4096) {
		*why = "below one page (4K); use off to disable";
		return -EINVAL;
	}
	cfg->interleave_min = n;
	return 0;
}

static int opt_interleave_nodes(const char *v, struct policy_config *cfg,
				const char **why)
{
	policy_nodemask_t mask;
	int rc = policy_parse_nodelist(v, ALL_NODES, &mask);

	if (rc || mask == 0) {
		*why = rc == -ERANGE ? "node number out of range 0-63"
		       : rc ? "not a node list (numactl syntax: all, 0-3,5, !1)"
			    : "the list selects no node";
		return -EINVAL;
	}
	cfg->interleave_nodes = mask;
	cfg->interleave_nodes_text = v;
	return 0;
}

/* "0:3,1:1": node:weight pairs, weights 1-100. */
static int opt_weights(const char *v, struct policy_config *cfg, const char **why)
{
	uint8_t w[POLICY_MAX_NODES] = { 0 };
	const char *s = v;

	*why = "not equal or node:weight pairs such as 0:3,1:1 (weights 1-100)";
	if (strcmp(v, "equal") == 0) {
		memset(cfg->weight, 0, sizeof(cfg->weight));
		cfg->weights_text = NULL;
		return 0;
	}
	if (*s == '\0')
		return -EINVAL;
	while (*s) {
		int node = 0, weight = 0, digits = 0;

		for (; *s >= '0' && *s <= '9' && node < POLICY_MAX_NODES; s++, digits++)
			node = node * 10 + (*s - '0');
		if (!digits || node >= POLICY_MAX_NODES || *s++ != ':')
			return -EINVAL;
		for (digits = 0; *s >= '0' && *s <= '9' && weight <= 100; s++, digits++)
			weight = weight * 10 + (*s - '0');
		if (!digits || weight < 1 || weight > 100 || w[node])
			return -EINVAL;
		w[node] = (uint8_t)weight;
		if (*s == ',' && s[1] != '\0')
			s++;
		else if (*s)
			return -EINVAL;
	}
	memcpy(cfg->weight, w, sizeof(w));
	cfg->weights_text = v;
	return 0;
}

static int opt_mmap(const char *v, struct policy_config *cfg, const char **why)
{
	*why = "not one of interleave, local, off";
	if (strcmp(v, "interleave") == 0)
		cfg->mmap = POLICY_MMAP_INTERLEAVE;
	else if (strcmp(v, "local") == 0)
		cfg->mmap = POLICY_MMAP_LOCAL;
	else if (strcmp(v, "off") == 0)
		cfg->mmap = POLICY_MMAP_OFF;
	else
		return -EINVAL;
	return 0;
}

static int opt_threads(const char *v, struct policy_config *cfg, const char **why)
{
	*why = "not one of none, spread, compact";
	if (strcmp(v, "none") == 0)
		cfg->threads = POLICY_THREADS_NONE;
	else if (strcmp(v, "spread") == 0)
		cfg->threads = POLICY_THREADS_SPREAD;
	else if (strcmp(v, "compact") == 0)
		cfg->threads = POLICY_THREADS_COMPACT;
	else
		return -EINVAL;
	return 0;
}

static int opt_arenas(const char *v, struct policy_config *cfg, const char **why)
{
	*why = "not a whole number from 1 to 16";
	return parse_int(v, 1, 16, &cfg->arenas_per_cpu);
}

static int opt_stats(const char *v, struct policy_config *cfg, const char **why)
{
	bool on;

	*why = "not on, off or inline";
	if (strcasecmp(v, "inline") == 0) {
		cfg->stats = true;
		cfg->stats_inline = true;
		return 0;
	}
	if (parse_bool(v, &on))
		return -EINVAL;
	cfg->stats = on;
	cfg->stats_inline = false;
	return 0;
}

const struct policy_option policy_options[] = {
	{ "NUMASHIM_POLICY", "local", "local|interleave|preferred:N|bind:NODES|off",
	  "Where heap memory goes: on the node the allocating thread runs on "
	  "(local), spread over the nodes (interleave), on one node "
	  "(preferred:N), only on the listed nodes (bind:NODES), or plain "
	  "jemalloc (off).", opt_policy },
	{ "NUMASHIM_NODES", "all", "NODES (numactl syntax: all, 0-3,5, !1, +0-1)",
	  "Restrict the nodes numashim places memory on; threads on other "
	  "nodes use the nearest listed node.", opt_nodes },
	{ "NUMASHIM_STRICT", "0", "0|1",
	  "Bind memory to its node (MPOL_BIND: the kernel fails or reclaims "
	  "rather than spill to another node) instead of preferring it "
	  "(MPOL_PREFERRED).", opt_strict },
	{ "NUMASHIM_VERBOSE", "0", "0|1|2",
	  "Print the topology and the resolved plan to stderr at start (1), "
	  "and every thread's node switch (2).", opt_verbose },
	{ "NUMASHIM_INTERLEAVE_MIN", "64M", "SIZE (K/M/G suffixes) or off",
	  "malloc-family blocks and anonymous mappings at least this big are "
	  "interleaved: 64M is above the private work buffers of a thread "
	  "(sort/hash/network buffers, tens of MiB at most) and below the "
	  "shared pools that all threads read (buffer pools, caches, GiBs).",
	  opt_interleave_min },
	{ "NUMASHIM_INTERLEAVE_NODES", "all", "NODES (numactl syntax)",
	  "The nodes large blocks are interleaved over (those with memory "
	  "that the process may use).", opt_interleave_nodes },
	{ "NUMASHIM_INTERLEAVE_WEIGHTS", "equal", "NODE:WEIGHT,... (e.g. 0:3,1:1)",
	  "Interleave large blocks in these proportions instead of equally "
	  "(kernels without weighted interleave get 2 MiB runs per node).",
	  opt_weights },
	{ "NUMASHIM_MMAP", "interleave", "interleave|local|off",
	  "Large anonymous mmap and System V shm: interleave them, keep them "
	  "on the caller's node, or leave them to the kernel. File, fixed, "
	  "hugetlb and stack mappings are never touched, but for a fixed "
	  "one made inside a large mapping placed before (a JVM commits its "
	  "heap so): it is placed as that one. MAP_POPULATE and "
	  "MAP_LOCKED mappings are placed before their pages exist.", opt_mmap },
	{ "NUMASHIM_THREADS", "none", "none|spread|compact",
	  "Place new threads: leave it to the scheduler, spread them "
	  "round-robin over the nodes, or fill one node's CPUs first. A "
	  "thread created with its own CPU affinity keeps it.", opt_threads },
	{ "NUMASHIM_ARENAS_PER_CPU", "1", "1-16",
	  "How many jemalloc arenas a node's threads share, per CPU of the "
	  "node (a thread takes the least used). 1 keeps the heap no bigger "
	  "than plain jemalloc's, whose 4 per CPU would be 4 per CPU per node "
	  "for threads that move between nodes; more only helps when many "
	  "more threads than CPUs allocate at once. It also sets how many "
	  "automatic arenas jemalloc keeps, per CPU the process may run on "
	  "(at most 4, jemalloc's own default), for the threads numashim "
	  "does not bind (those with a memory policy of their own): each "
	  "costs every process a page at start. MALLOC_CONF's narenas or "
	  "narenas_ratio still decide that count.", opt_arenas },
	{ "NUMASHIM_STATS", "on", "on|off|inline",
	  "Keep live per-node counters in a shared-memory segment "
	  "(/dev/shm/numashim.PID.START, mode 0600) for `numashim stat`. "
	  "Once the program has threads and numashim places memory, a "
	  "helper thread (numashim-stats) refreshes it, at most once a second "
	  "and only while the program allocates; inline does that in the "
	  "program's own threads instead (a pause of 0.1-1 ms in one "
	  "allocation a second), for programs that must stay free of extra "
	  "threads (unshare(CLONE_NEWUSER)). A process numashim passes "
	  "through always refreshes inline.",
	  opt_stats },
	{ "NUMASHIM_FAKE_NODES", "0", "N",
	  "Testing and benchmarks only: act as if the online CPUs formed N "
	  "nodes; memory of virtual node k goes to real node k mod R.",
	  opt_fake_nodes },
};
const size_t policy_option_count =
	sizeof(policy_options) / sizeof(policy_options[0]);

/*
 * Names under the NUMASHIM_ prefix that are not options: they are set by
 * numashim's own tools, set-up script (./dev reads NUMASHIM_NO_APT, which
 * people export) and test harness, so they must not be reported as typos
 * of an option. An entry ending in '_' reserves a whole prefix.
 */
static const char *const not_options[] = {
	"NUMASHIM_LIB", "NUMASHIM_BUILDDIR", "NUMASHIM_SRCDIR", "NUMASHIM_VM_",
	"NUMASHIM_NO_APT",
};

void policy_config_default(struct policy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = POLICY_LOCAL;
	cfg->preferred_node = 0;
	cfg->nodes = ALL_NODES;
	cfg->interleave_min = POLICY_INTERLEAVE_MIN_DEFAULT;
	cfg->interleave_nodes = ALL_NODES;
	cfg->arenas_per_cpu = 1;
	cfg->stats = true;
}

static bool is_not_option(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(not_options) / sizeof(not_options[0]); i++) {
		size_t n = strlen(not_options[i]);
		bool prefix = not_options[i][n - 1] == '_';

		if ((prefix ? len >= n : len == n) &&
		    strncmp(name, not_options[i], n) == 0)
			return true;
	}
	return false;
}

int policy_config_from_env(char *const *envp, struct policy_config *cfg,
			   policy_warn_fn warn, void *ctx)
{
	static const char prefix[] = "NUMASHIM_";
	int problems = 0;

	policy_config_default(cfg);
	for (; envp && *envp; envp++) {
		const char *e = *envp, *eq = strchr(e, '=');
		const struct policy_option *opt = NULL;
		size_t len;

		if (eq == NULL || strncmp(e, prefix, sizeof(prefix) - 1) != 0)
			continue;
		len = (size_t)(eq - e);
		for (size_t i = 0; i < policy_option_count; i++) {
			if (strlen(policy_options[i].name) == len &&
			    strncmp(e, policy_options[i].name, len) == 0)
				opt = &policy_options[i];
		}
		if (opt == NULL) {
			char name[64];

			if (is_not_option(e, len))
				continue;
			if (len >= sizeof(name))
				len = sizeof(name) - 1;
			memcpy(name, e, len);
			name[len] = '\0';
			warn(ctx, name, eq + 1, "not a numashim variable (see "
			     "numashim help env)", "defaults");
			problems++;
			continue;
		}
		{
			struct policy_config trial = *cfg;
			const char *why = "invalid value";

			if (opt->parse(eq + 1, &trial, &why) == 0) {
				*cfg = trial;
			} else {
				warn(ctx, opt->name, eq + 1, why, opt->def);
				problems++;
			}
		}
	}
	return problems;
}

/*
 * A user who runs a privileged program must not choose its placement:
 * NUMASHIM_POLICY=bind:1 is MPOL_BIND, which can have the kernel kill it
 * for want of memory on node 1 (found by a review). Turning numashim off
 * gives plain jemalloc, which the user could have had anyway.
 */
int policy_config_for_process(char *const *envp, bool secure,
			      struct policy_config *cfg, policy_warn_fn warn,
			      void *ctx)
{
	static const char var[] = "NUMASHIM_POLICY=";

	if (!secure)
		return policy_config_from_env(envp, cfg, warn, ctx);
	policy_config_default(cfg);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, var, sizeof(var) - 1) == 0 &&
		    mode_is_off(*envp + sizeof(var) - 1))
			cfg->mode = POLICY_OFF;
	return 0;
}

const char *policy_mode_name(enum policy_mode m)
{
	switch (m) {
	case POLICY_LOCAL: return "local";
	case POLICY_INTERLEAVE: return "interleave";
	case POLICY_PREFERRED: return "preferred";
	case POLICY_BIND: return "bind";
	case POLICY_OFF: return "off";
	}
	return "?";
}
