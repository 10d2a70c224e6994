/*
 * Start-up: read the policy from the environment and the topology from
 * sysfs, resolve the plan, and (when there is more than one node to place
 * on) create the first arenas and bind the main thread. Nothing here may
 * take the program down: every failure degrades to plain jemalloc.
 */
#include "shim/shim.h"
#include "shim/log.h"
#include "shim/os.h"

#include <link.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

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
	ns_line_str(&l, ns.cfg.strict ? ", strict" : ", advisory", 0);
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
 * jemalloc's compiled-in options (jemalloc reads them before /etc/malloc.conf
 * and MALLOC_CONF, which still override them). The oversize threshold is
 * set out of reach (16 TiB): no block goes to jemalloc's "huge" arena, which
 * purges on every free (the malloc-large benchmark ran at 5.1x glibc's time
 * with jemalloc's default, 0.4x without), but jemalloc still reserves the
 * huge arena's index, and with a large set numashim makes that arena the
 * set's and lowers the threshold to NUMASHIM_INTERLEAVE_MIN (shim/large.c):
 * jemalloc then routes big blocks there itself, with no check in malloc.
 */
#define NS_JE_CONF "oversize_threshold:17592186044416"
_Static_assert(NS_OVERSIZE_OFF == 17592186044416ULL, "the option above");
NS_HIDDEN const char *nsje_malloc_conf = NS_JE_CONF;

/*
 * jemalloc's automatic arenas: 4 per CPU the process may run on, by
 * default. In an active process they serve only the threads numashim does
 * not bind (one with a memory policy of its own, one not made through
 * pthread_create) and the main thread until its binding: the others
 * allocate from the node sets' arenas. Yet each one costs every process at
 * its start, once anything calls mallctl (numashim does, to make its
 * arenas): jemalloc's ctl module then sets up an entry per arena index, a
 * page each. A trivial program under the shim took 165 page faults with
 * jemalloc's 8 arenas here and 1,211 with 1,024, the default on a 256-CPU
 * machine: 4 MiB and over a millisecond per process. And jemalloc caps
 * arena indices at 4095, which 4 per CPU reaches at 1,024 CPUs, leaving
 * no index for the node sets' arenas. So an active numashim asks jemalloc
 * for as many automatic arenas as its sets hold at most, per CPU
 * (NUMASHIM_ARENAS_PER_CPU, 1 by default), up to jemalloc's 4 and 1,024
 * in all.
 *
 * The count is an option jemalloc reads once, when it starts: this must
 * run before numashim's first call into it. If something allocated before
 * numashim's constructor (another preloaded library's constructor),
 * jemalloc has started and keeps its own count. MALLOC_CONF and
 * /etc/malloc.conf, read after this, still override it.
 */
extern unsigned je_narenas_auto; /* 0 until jemalloc starts */
#define NS_NARENAS_MAX 1024

static void choose_narenas(void)
{
	static char conf[sizeof(NS_JE_CONF) + 32] = NS_JE_CONF ",narenas:";
	cpu_set_t mine;
	uint64_t n;

	if (__atomic_load_n(&je_narenas_auto, __ATOMIC_RELAXED) != 0 ||
	    sched_getaffinity(0, sizeof(mine), &mine) != 0)
		return;
	/* Never more than jemalloc's default, nor than a quarter of its
	 * indices: the node sets' arenas need theirs. */
	n = (uint64_t)CPU_COUNT(&mine) *
	    (uint64_t)(ns.cfg.arenas_per_cpu < 4 ? ns.cfg.arenas_per_cpu : 4);
	if (n > NS_NARENAS_MAX)
		n = NS_NARENAS_MAX;
	if (n == 0)
		return;
	policy_format_u64(n, conf + strlen(conf));
	nsje_malloc_conf = conf;
}

/*
 * jemalloc, then its ctl module, started before numashim's first mallctl.
 * The ctl module (started by the first mallctl) sets up an entry of some
 * 30 KiB for every arena index (the automatic ones, above, and all the
 * merged statistics) in jemalloc's metadata, and writes the first bytes of
 * each. Under transparent huge pages "always" (the default of many
 * distributions), each 2 MiB those entries span is a huge page once one
 * byte of it is written: a trivial program with 256 arenas had 16.8 MiB
 * of RSS, 14 of them huge pages, against plain jemalloc's 9.6 (1,024
 * arenas: 45.5). So the ctl module's first call runs with what jemalloc
 * maps kept to small pages (madvise MADV_NOHUGEPAGE, which khugepaged
 * respects too). jemalloc itself and this thread's cache start first, as
 * they would without numashim: their mappings are the program's heap. Any
 * other thread that makes jemalloc map memory in this window gets small
 * pages for it too: this runs in numashim's constructor, before the
 * program's threads.
 */
static void start_jemalloc(void)
{
	static bool started;
	bool prof = false;
	size_t len = sizeof(prof);

	if (started)
		return;
	started = true;
	nsje_nallocx(1, 0);
	__atomic_store_n(&ns_je_small_pages, true, __ATOMIC_RELAXED);
	nsje_mallctl("opt.prof", &prof, &len, NULL, 0);
	__atomic_store_n(&ns_je_small_pages, false, __ATOMIC_RELAXED);
}

static void setup(void);

/* In the child of a fork: locks other threads of the parent may have held
 * are free, and the child's stats segment is its own. */
static void forked_child(void)
{
	ns_mmap_forked();
	ns_stats_forked();
}

__attribute__((constructor(101))) static void numashim_init(void)
{
	setup(); /* first: it may set jemalloc's options (choose_narenas) */
	start_jemalloc();
	ns_prof_init();
	if (!ns.active)
		ns_thread_init(); /* the callback below needs its mallctl names */
	ns_stats_init();
	ns_thread_watch();
	pthread_atfork(NULL, NULL, forked_child);
}

static void setup(void)
{
	const char *other = NULL;
	int mode = MPOL_DEFAULT;
	policy_nodemask_t pmask;

	policy_config_from_env(environ, &ns.cfg, ns_log_bad_input, NULL);
	if (ns.cfg.mode == POLICY_OFF) {
		if (ns.cfg.verbose)
			say_inactive("NUMASHIM_POLICY=off");
		return;
	}
	dl_iterate_phdr(find_jemalloc, &other);
	if (other) {
		struct ns_line l;

		ns_line_init(&l);
		ns_line_str(&l, "the program also loads ", 0);
		ns_line_str(&l, other, 120);
		ns_line_str(&l, ": NUMA placement is off; do not pass its "
			    "mallocx() blocks to free()", 0);
		ns_line_emit(&l);
		return;
	}
	os_read_topology("", &ns.topo);
	if (ns.cfg.fake_nodes && policy_topology_fake(&ns.topo, ns.cfg.fake_nodes))
		warn_fake(ns.cfg.fake_nodes);
	/* A process started under numactl --membind/--interleave/--preferred
	 * has chosen its placement: that choice wins over ours. */
	if (!ns.topo.fake && os_get_mempolicy(&mode, &pmask) == 0 &&
	    mode != MPOL_DEFAULT && mode != MPOL_LOCAL) {
		if (ns.cfg.verbose)
			say_inactive("the process already has a NUMA memory policy "
				     "(numactl?); it is left in charge");
		return;
	}
	policy_resolve(&ns.cfg, &ns.topo, &ns.plan, ns_log_bad_input, NULL);
	if (!ns.plan.active) {
		if (ns.cfg.verbose)
			say_inactive(ns.plan.reason);
		return;
	}
	choose_narenas();
	start_jemalloc();
	ns_thread_init();
	ns.jvm_numa = jvm_manages_numa();
	if (ns_arenas_init() || ns_large_init()) {
		say_inactive("could not read jemalloc's extent hooks or reserve "
			     "the tag map");
		return;
	}
	pthread_atfork(ns_arena_atfork_prepare, ns_arena_atfork_parent,
		       ns_arena_atfork_child);
	ns.active = true;
	ns_dispatch_checked();
	if (ns.cfg.verbose)
		say_plan();
	ns_thread_bind(true);
}
