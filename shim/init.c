/*
 * Start-up: read the policy from the environment and the topology from
 * sysfs, resolve the plan, and (when there is more than one node to place
 * on) create the first arenas and bind the main thread. Nothing here may
 * take the program down: every failure degrades to plain jemalloc.
 */
#include "shim/shim.h"
#include "shim/log.h"
#include "shim/os.h"

#include <errno.h>
#include <link.h>
#include <numaif.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

struct ns_state ns = { .mbind_ok = true };

static void say_inactive(const char *why)
{
	struct ns_line l;

	ns_line_init(&l);
	ns_line_str(&l, "passing through to jemalloc: ", 0);
	ns_line_str(&l, why, 0);
	ns_line_emit(&l);
}

static void say_plan(void)
{
	struct ns_line l;
	char list[128];

	ns_line_init(&l);
	ns_line_str(&l, ns.topo.fake ? "emulated topology: " : "topology: ", 0);
	ns_line_long(&l, __builtin_popcountll(ns.topo.online));
	ns_line_str(&l, " nodes (with memory ", 0);
	policy_format_nodelist(ns.topo.has_memory, list, sizeof(list));
	ns_line_str(&l, list, 0);
	ns_line_str(&l, ", allowed ", 0);
	policy_format_nodelist(ns.topo.allowed, list, sizeof(list));
	ns_line_str(&l, list, 0);
	ns_line_str(&l, "), ", 0);
	ns_line_long(&l, ns.topo.nr_cpus);
	ns_line_str(&l, " cpus", 0);
	ns_line_emit(&l);

	ns_line_init(&l);
	ns_line_str(&l, "policy ", 0);
	ns_line_str(&l, policy_mode_name(ns.plan.mode), 0);
	ns_line_str(&l, " on nodes ", 0);
	policy_format_nodelist(ns.plan.nodes, list, sizeof(list));
	ns_line_str(&l, list, 0);
	ns_line_str(&l, ns.plan.strict ? ", strict" : ", advisory", 0);
	ns_line_str(&l, "; arena sets:", 0);
	for (int s = 0; s < ns.plan.nr_sets; s++) {
		ns_line_str(&l, " [node ", 0);
		ns_line_long(&l, ns.plan.set[s].node);
		ns_line_str(&l, " cpus ", 0);
		ns_line_long(&l, ns.plan.set[s].cpus);
		ns_line_str(&l, " mem ", 0);
		policy_format_nodelist(ns.plan.set[s].mask, list, sizeof(list));
		ns_line_str(&l, list, 0);
		ns_line_str(&l, "]", 0);
	}
	ns_line_emit(&l);
}

/* A program that links its own jemalloc would meet ours in one process:
 * its mallocx() blocks reaching our free() would be fatal. */
static int find_jemalloc(struct dl_phdr_info *info, size_t size, void *found)
{
	if (info->dlpi_name && strstr(info->dlpi_name, "libjemalloc.so"))
		*(const char **)found = info->dlpi_name;
	return 0;
}

/* A JVM started with -XX:+UseNUMA binds its heap itself: leave its
 * mappings alone. The flag may come on the command line or in the
 * variables the JVM reads its options from. */
static bool jvm_manages_numa(void)
{
	static const char flag[] = "-XX:+UseNUMA";
	static const char *const vars[] = {
		"JAVA_TOOL_OPTIONS=", "JDK_JAVA_OPTIONS=", "_JAVA_OPTIONS=",
	};
	char cmd[8192];
	ssize_t n = os_read_file("/proc/self/cmdline", cmd, sizeof(cmd));

	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(cmd + i) + 1)
		if (strcmp(cmd + i, flag) == 0)
			return true;
	for (char **e = environ; e && *e; e++)
		for (size_t v = 0; v < sizeof(vars) / sizeof(vars[0]); v++)
			if (strncmp(*e, vars[v], strlen(vars[v])) == 0 &&
			    strstr(*e, flag))
				return true;
	return false;
}

static void warn_fake(int n)
{
	char v[24];

	policy_format_u64((uint64_t)n, v);
	ns_log_bad_input(NULL, "NUMASHIM_FAKE_NODES", v,
			 "more virtual nodes than online CPUs", "the real topology");
}

/*
 * What numashim will do in this process, decided once from the
 * environment, the topology and the process's memory policy. It runs at
 * the start of numashim's constructor, or earlier, inside jemalloc's own
 * start (shim/je.c, nsje_sys_readlink), when a library's constructor
 * allocated first: there, jemalloc is half-made, so nothing here may
 * allocate (no malloc, no mallctl). Its messages are the bad-input lines;
 * setup says the verdict.
 */
static struct {
	pthread_once_t once;
	enum { UNDECIDED, OFF, OTHER_JE, OWN_POLICY, NO_PLAN, GO } verdict;
	const char *other;          /* OTHER_JE: the other jemalloc's path */
} D = { .once = PTHREAD_ONCE_INIT };

/* Set while this thread decides: should anything on the way allocate
 * anyway (a libc call another preload replaced), jemalloc's start runs
 * inside the decision and must not wait for it (pthread_once would never
 * return); it then keeps its own arena count. */
static __thread bool deciding __attribute__((tls_model("initial-exec")));

static void decide_once(void)
{
	int mode = MPOL_DEFAULT;
	policy_nodemask_t pmask;

	policy_config_for_process(environ, getauxval(AT_SECURE) != 0, &ns.cfg,
				  ns_log_bad_input, NULL);
	if (ns.cfg.mode == POLICY_OFF) {
		D.verdict = OFF;
		return;
	}
	dl_iterate_phdr(find_jemalloc, &D.other);
	if (D.other) {
		D.verdict = OTHER_JE;
		return;
	}
	os_read_topology("", &ns.topo);
	if (ns.cfg.fake_nodes) {
		os_keep_online_cpus("", &ns.topo); /* the CPUs to split */
		if (policy_topology_fake(&ns.topo, ns.cfg.fake_nodes))
			warn_fake(ns.cfg.fake_nodes);
	}
	/* A process started under numactl --membind/--interleave/--preferred
	 * has chosen its placement: that choice wins over ours. */
	if (!ns.topo.fake && os_get_mempolicy(&mode, &pmask) == 0 &&
	    mode != MPOL_DEFAULT && mode != MPOL_LOCAL) {
		D.verdict = OWN_POLICY;
		ns_je_percpu(ns.topo.possible_top);
		return;
	}
	policy_resolve(&ns.cfg, &ns.topo, &ns.plan, ns_log_bad_input, NULL);
	if (!ns.plan.active) {
		D.verdict = NO_PLAN;
		ns_je_percpu(ns.topo.possible_top);
		return;
	}
	D.verdict = GO;
	ns_je_choose_narenas(ns.cfg.arenas_per_cpu, ns.topo.nr_cpus);
}

static void decide(void)
{
	if (deciding)
		return;
	deciding = true;
	pthread_once(&D.once, decide_once);
	deciding = false;
}

/* From jemalloc's start: before libc's (ld.so's own first calls), environ
 * is not set yet, and a decision then would miss the NUMASHIM_* variables;
 * it waits for numashim's constructor, and jemalloc keeps its own arena
 * count. */
void ns_decide(void)
{
	if (environ != NULL)
		decide();
}

static void setup(void);

/* Set once the constructor is done: what ns_forked_child resets exists. */
static bool child_ready;

/* In the child of a fork, from jemalloc's child handler (shim/je.c), so
 * before any other library's (a library's handler may make a thread that
 * allocates): locks other threads of the parent may have held are free,
 * and the child's stats segment is its own. */
void ns_forked_child(void)
{
	ns_mlock_forked();
	ns_remote_forked(); /* no system call: also under a filter */
	if (!__atomic_load_n(&child_ready, __ATOMIC_ACQUIRE) || ns_sandboxed())
		return; /* sandboxed: the child's statistics stop too */
	ns_place_forked(); /* before the stats helper takes the CPUs */
	ns_mmap_forked();
	ns_stats_forked();
}

__attribute__((constructor(101))) static void numashim_init(void)
{
	ns_self.big_stack = ns_main_stack_big();
	ns_exec_init();
	decide();       /* first: it sets jemalloc's options */
	ns_prof_init(ns_je_start()); /* then jemalloc starts */
	setup();
	ns_thread_watch();
	ns_stats_init(); /* after the callback, which refreshes the segment */
	__atomic_store_n(&child_ready, true, __ATOMIC_RELEASE);
}

/* Acts on the decision. When it is to go active but the arenas or the tag
 * map cannot be had, numashim passes through with the arena count chosen
 * for it (ns_je_choose_narenas): jemalloc has started by then. */
static void setup(void)
{
	int rc;

	switch (D.verdict) {
	case UNDECIDED: /* not reached (decide ran above); pass through */
		return;
	case OFF:
		if (ns.cfg.verbose)
			say_inactive("NUMASHIM_POLICY=off");
		return;
	case OTHER_JE: {
		struct ns_line l;

		ns_line_init(&l);
		ns_line_str(&l, "the program also loads ", 0);
		ns_line_str(&l, D.other, 120);
		ns_line_str(&l, ": NUMA placement is off; do not pass its "
			    "mallocx() blocks to free()", 0);
		ns_line_emit(&l);
		return;
	}
	case OWN_POLICY:
		if (ns.cfg.verbose)
			say_inactive("the process already has a NUMA memory policy "
				     "(numactl?); it is left in charge");
		return;
	case NO_PLAN:
		if (ns.cfg.verbose)
			say_inactive(ns.plan.reason);
		return;
	case GO:
		break;
	}
	ns_je_ctl_start(); /* the arenas are made through jemalloc's mallctl */
	ns_thread_init();
	ns.jvm_numa = jvm_manages_numa();
	rc = ns_arenas_init();
	if (rc == -ENOSPC)
		return; /* said, naming the option */
	if (rc || ns_large_init()) {
		say_inactive("could not read jemalloc's extent hooks or reserve "
			     "the tag map");
		return;
	}
	ns.active = true;
	ns_dispatch_checked();
	if (ns.cfg.verbose)
		say_plan();
	ns_thread_bind(true);
}
