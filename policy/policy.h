/*
 * policy — pure decisions for numashim.
 *
 * Everything here takes its inputs as arguments (environment strings, a
 * topology struct) and returns a decision, so unit tests can inject fake
 * 1/2/4/8-node, memoryless and cpuset-restricted machines. Nothing here
 * allocates, calls stdio or touches the OS: the shim runs this code from
 * its constructor, before (and while) the allocator is being set up.
 *
 * Conventions: functions return 0 on success and -errno on failure.
 */
#ifndef NUMASHIM_POLICY_H
#define NUMASHIM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_NODES 64   /* node ids 0..63: one uint64_t mask */
#define POLICY_MAX_CPUS 1024  /* CPU ids 0..1023 */
#define POLICY_MAX_SETS (POLICY_MAX_NODES + 1) /* + the large-block set */

typedef uint64_t policy_nodemask_t;

static inline policy_nodemask_t policy_node_bit(int node)
{
	return (policy_nodemask_t)1 << node;
}

/* ------------------------------------------------------------ node lists */

/*
 * Parse numactl's node-list syntax: "all", "0-3,5", "!1" (all but),
 * "+0-1" (relative to `allowed`, the n-th allowed node). Written here
 * rather than taken from libnuma because numa_parse_nodestring allocates
 * and the shim parses before its heap is ready.
 * Returns 0 and sets *out, or -EINVAL (syntax) / -ERANGE (node id >= 64).
 * `allowed` resolves "all", "!" and "+"; pass all-ones when unknown.
 */
int policy_parse_nodelist(const char *s, policy_nodemask_t allowed,
			  policy_nodemask_t *out);

/*
 * Call fn for every id in a list "0-3,8-11" (sysfs cpulist/nodelist form;
 * a trailing newline and an empty list are accepted). Ids must be < limit.
 * Returns 0, -EINVAL (syntax) or -ERANGE (id >= limit).
 */
int policy_list_foreach(const char *s, long limit,
			void (*fn)(void *ctx, long id), void *ctx);

/* Format a mask in the same syntax ("0-3,5"); returns the length written
 * (always NUL-terminated when len > 0; truncated output ends in "..."). */
size_t policy_format_nodelist(policy_nodemask_t mask, char *buf, size_t len);

/* Decimal digits of v into out (at least 21 bytes), NUL-terminated;
 * returns the length. For code that may not call snprintf (the shim). */
size_t policy_format_u64(uint64_t v, char *out);

/* Parse a size with an optional K/M/G/T suffix (binary units). */
int policy_parse_size(const char *s, size_t *out);

/* ------------------------------------------------------------ config */

enum policy_mode {
	POLICY_LOCAL = 0,   /* each thread's memory on the node it runs on */
	POLICY_INTERLEAVE,  /* all heap memory interleaved over the nodes */
	POLICY_PREFERRED,   /* all heap memory on one node (advisory) */
	POLICY_BIND,        /* like local, restricted to a node set, strict */
	POLICY_OFF,         /* plain jemalloc, no NUMA placement */
};

enum policy_mmap {
	POLICY_MMAP_INTERLEAVE = 0, /* large anonymous mappings interleaved */
	POLICY_MMAP_LOCAL,          /* ... preferred on the caller's node */
	POLICY_MMAP_OFF,            /* mappings left to the kernel */
};

enum policy_threads {
	POLICY_THREADS_NONE = 0,    /* the scheduler places threads */
	POLICY_THREADS_SPREAD,      /* new threads round-robin over nodes */
	POLICY_THREADS_COMPACT,     /* fill one node's CPUs, then the next */
};

struct policy_config {
	enum policy_mode mode;
	int preferred_node;           /* POLICY_PREFERRED */
	policy_nodemask_t bind_nodes; /* POLICY_BIND */
	policy_nodemask_t nodes;      /* NUMASHIM_NODES; ~0 = all */
	/* The list texts as given, re-read against the real allowed set by
	 * policy_resolve ("all", "!", "+" are relative to it); NULL = unset. */
	const char *nodes_text, *bind_text;
	const char *policy_text;      /* NUMASHIM_POLICY as given (warnings) */
	bool strict;                  /* MPOL_BIND instead of MPOL_PREFERRED */
	int verbose;                  /* 0 quiet, 1 summary, 2 detail */
	int fake_nodes;               /* NUMASHIM_FAKE_NODES; 0 = real topology */
	/* Large buffers (malloc family and anonymous mmap/shm). */
	size_t interleave_min;        /* 0 = never interleave large blocks */
	policy_nodemask_t interleave_nodes; /* ~0 = all usable */
	const char *interleave_nodes_text;
	uint8_t weight[POLICY_MAX_NODES]; /* per (virtual) node; all 0 = equal */
	const char *weights_text;
	enum policy_mmap mmap;
	enum policy_threads threads;
	int arenas_per_cpu;           /* NUMASHIM_ARENAS_PER_CPU: set size cap */
	bool stats;                   /* NUMASHIM_STATS: the shared segment */
	bool stats_inline;            /* NUMASHIM_STATS=inline: no helper thread */
};

/* The default NUMASHIM_INTERLEAVE_MIN: see its help text for why. */
#define POLICY_INTERLEAVE_MIN_DEFAULT ((size_t)64 << 20)

/*
 * Reports one bad input. `var` is the variable, `value` what it held,
 * `why` a short reason, `fallback` what is used instead. The shim prints
 *   numashim: VAR="value": why; using fallback
 */
typedef void (*policy_warn_fn)(void *ctx, const char *var, const char *value,
			       const char *why, const char *fallback);

struct policy_option {
	const char *name;      /* NUMASHIM_... */
	const char *def;       /* default, as text (also the fallback) */
	const char *values;    /* accepted values, for help text */
	const char *help;      /* one sentence */
	/* Parses `value` into cfg; on failure returns -EINVAL and sets *why. */
	int (*parse)(const char *value, struct policy_config *cfg,
		     const char **why);
};

/* The option table: the single source for parsing and `numashim help env`. */
extern const struct policy_option policy_options[];
extern const size_t policy_option_count;

void policy_config_default(struct policy_config *cfg);

/*
 * Fill cfg from an environment vector (`environ` in the shim). Unknown
 * NUMASHIM_* names are reported too (a typo must not pass silently).
 * Every bad value is reported once through warn and its default is used.
 * Returns the number of problems reported.
 */
int policy_config_from_env(char *const *envp, struct policy_config *cfg,
			   policy_warn_fn warn, void *ctx);

/*
 * The process's configuration: policy_config_from_env, unless `secure`
 * (the kernel's AT_SECURE: a setuid, setgid or file-capability program run
 * by a user it does not trust). Then every NUMASHIM_* variable is ignored,
 * silently, as glibc ignores LD_* and jemalloc MALLOC_CONF there, but for
 * NUMASHIM_POLICY=off: the defaults, or numashim off. Returns the number of
 * problems reported (none when secure).
 */
int policy_config_for_process(char *const *envp, bool secure,
			      struct policy_config *cfg, policy_warn_fn warn,
			      void *ctx);

/* ------------------------------------------------------------ topology */

struct policy_topology {
	int nr_nodes;                  /* highest node id + 1 */
	policy_nodemask_t online;      /* nodes that exist */
	policy_nodemask_t has_memory;  /* nodes with memory */
	policy_nodemask_t allowed;     /* mems this process may use */
	uint8_t distance[POLICY_MAX_NODES][POLICY_MAX_NODES]; /* 0 = unknown */
	int nr_cpus;                   /* highest CPU id + 1 */
	/* The highest possible CPU id + 1 as sysfs lists it, not capped at
	 * POLICY_MAX_CPUS; 0 where it could not be read (shim/os.c). On a
	 * multi-node host nr_cpus comes from the nodes' CPU lists, which
	 * hold only the online CPUs. */
	long possible_top;
	int16_t cpu_node[POLICY_MAX_CPUS]; /* -1: CPU absent */
	/* Emulated topology (NUMASHIM_FAKE_NODES): virtual node v's memory
	 * lives on real node mem_node[v]. Identity when not emulated. */
	int fake;
	int16_t mem_node[POLICY_MAX_NODES];
	/* Set by shim/os.c when sysfs names a node id >= POLICY_MAX_NODES or
	 * a CPU id >= POLICY_MAX_CPUS: the machine cannot be represented
	 * here, and policy_resolve passes through with this as its reason
	 * (a CPU left out would take node 0's arenas). NULL otherwise. */
	const char *unsupported;
};

/* A one-node machine with cpus CPUs (the fallback when sysfs is unreadable). */
void policy_topology_single(struct policy_topology *t, int cpus);

/* Distance between two nodes: the SLIT value, or 10/20 when unknown. */
int policy_distance(const struct policy_topology *t, int a, int b);

/* The node with memory in `candidates` nearest to `from` (ties: lowest id);
 * -1 when candidates is empty. */
int policy_nearest(const struct policy_topology *t, int from,
		   policy_nodemask_t candidates);

/*
 * Replace a real topology with `n` virtual nodes: the online CPUs are
 * split evenly, in id order, into n nodes, each with memory; virtual node
 * v's memory goes to the (v mod R)-th real memory node. Distances: 10
 * local, 20 remote. Returns 0, or -EINVAL if n < 1, n > 64 or n exceeds
 * the CPU count.
 */
int policy_topology_fake(struct policy_topology *t, int n);

/* ------------------------------------------------------------ plan */

/* How the kernel is asked to place one arena set's memory. */
enum policy_mpol {
	POLICY_MPOL_NONE = 0,   /* leave the default (first touch) */
	POLICY_MPOL_PREFERRED,
	POLICY_MPOL_BIND,
	POLICY_MPOL_INTERLEAVE,
};

struct policy_set {
	int node;                 /* home node (virtual), -1 for interleave */
	enum policy_mpol mpol;
	policy_nodemask_t mask;   /* REAL nodes handed to mbind */
	policy_nodemask_t vmask;  /* the (virtual) nodes the set places on */
	int cpus;                 /* CPUs whose threads use this set */
};

/*
 * The resolved decision: which arena sets exist and which set a thread on
 * each CPU uses. `active == false` means pass straight through to jemalloc
 * (one node, policy off, or nothing to do); `reason` says why.
 */
struct policy_plan {
	bool active;
	const char *reason;
	enum policy_mode mode;
	policy_nodemask_t nodes;   /* effective (virtual) nodes used */
	bool strict;               /* MPOL_BIND: NUMASHIM_STRICT or bind:NODES */
	int nr_sets;
	struct policy_set set[POLICY_MAX_SETS];
	int default_set;           /* for CPUs we cannot map */
	/* Large blocks (>= large_min) come from set large_set, whose memory is
	 * interleaved over set[large_set].mask with weight[] (per REAL node;
	 * all equal = plain MPOL_INTERLEAVE). large_set < 0: none; then a
	 * plan left with one node still has large_min (its large mappings
	 * are placed as its node set's memory is), and large_min is 0 under
	 * NUMASHIM_INTERLEAVE_MIN=off. */
	int large_set;
	size_t large_min;
	uint8_t weight[POLICY_MAX_NODES];
	bool weighted;
	bool vweighted;            /* NUMASHIM_INTERLEAVE_WEIGHTS taken, per
				    * (virtual) node: cfg.weight[] applies */
	enum policy_mmap mmap;
	enum policy_threads threads;
	int nr_cpus;
	int8_t cpu_set[POLICY_MAX_CPUS];
};

/*
 * Resolve cfg against topology t. Impossible requests (nodes that do not
 * exist, lie outside `allowed` or have no memory) are reported through warn
 * and narrowed or replaced by a safe choice; the result is always usable.
 */
void policy_resolve(const struct policy_config *cfg,
		    const struct policy_topology *t, struct policy_plan *plan,
		    policy_warn_fn warn, void *ctx);

/* The set a thread running on `cpu` uses (default_set if cpu unknown). */
/* Whether the plan maps cpu to a set: not for a CPU that came online after
 * the plan was made (hot-plug), which policy_set_for_cpu gives the
 * default set. */
static inline bool policy_cpu_known(const struct policy_plan *p, int cpu)
{
	return (unsigned)cpu < (unsigned)p->nr_cpus && p->cpu_set[cpu] >= 0;
}

static inline int policy_set_for_cpu(const struct policy_plan *p, int cpu)
{
	if ((unsigned)cpu < (unsigned)p->nr_cpus && p->cpu_set[cpu] >= 0)
		return p->cpu_set[cpu];
	return p->default_set;
}

const char *policy_mode_name(enum policy_mode m);

/* ------------------------------------------------------------ placement */

/*
 * Weighted interleave done in user space (kernels before 6.9 have no
 * MPOL_WEIGHTED_INTERLEAVE): the range is cut into runs, each bound to one
 * node, in the weights' proportion. A cycle gives node n weight[n] chunks of
 * 2 MiB; cycles grow for big ranges so a range needs at most about 256
 * runs per weighted node (each run is one VMA: max_map_count is finite).
 * Ranges are cut as parts of one stream: `before` is the length of the
 * ranges cut before this one, and the range starts where the stream is in
 * the cycle (rounded down to a unit). So ranges shorter than a cycle still
 * share the nodes out in the weights' proportion, to within a unit in all;
 * each starting the cycle afresh would put them all on the first node.
 * Runs end on huge-page boundaries of the range's address `addr` (the
 * first run is cut short to reach one), so no huge page spans two runs.
 * Calls fn(ctx, offset, length, real_node) for every run; returns the
 * number of runs, or -EINVAL if no node has a weight.
 */
int policy_weighted_runs(uintptr_t addr, size_t len,
			 const uint8_t weight[POLICY_MAX_NODES], uint64_t before,
			 void (*fn)(void *ctx, size_t off, size_t len, int node),
			 void *ctx);

/*
 * Interleave by huge page. MPOL_INTERLEAVE picks a huge page's node from
 * its address (its 2 MiB index modulo the node count), which spreads one
 * big range well but not a heap of many small ones: jemalloc maps its
 * 2 MiB-aligned extents of 2.5 to 4 MiB (one whole huge page each) 4 MiB
 * apart, so every one of those huge pages is on the same node. Here
 * the whole 2 MiB pages of [addr, addr + len) are cut into units (2 MiB,
 * grown like policy_weighted_runs' for big ranges) that go round the nodes
 * of `nodes` in order, the first unit to the node at position `first`
 * (modulo their count), so ranges that each take the next positions share
 * the nodes out whatever their sizes. The parts before the first and after
 * the last whole huge page (never a huge page) get node -1: interleave
 * those page by page. Adjacent units on one node make one run.
 * Calls fn(ctx, offset, length, node) for every run; returns the number of
 * runs, or -EINVAL if `nodes` is empty. policy_interleave_units says how
 * many positions a range takes.
 */
int policy_interleave_runs(uintptr_t addr, size_t len, policy_nodemask_t nodes,
			   unsigned long first,
			   void (*fn)(void *ctx, size_t off, size_t len, int node),
			   void *ctx);
unsigned long policy_interleave_units(uintptr_t addr, size_t len,
				      policy_nodemask_t nodes);

/*
 * The node the k-th thread created (k from 0) goes to under NUMASHIM_THREADS:
 * spread = round-robin over the plan's nodes that have CPUs; compact = fill
 * each such node's CPUs in node order, then start again. -1 for none.
 * `cpus_of` gives the CPU count per node that the process may run on.
 */
int policy_thread_node(const struct policy_plan *p, enum policy_threads mode,
		       unsigned long k, const int cpus_of[POLICY_MAX_NODES]);

#endif
