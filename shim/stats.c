/*
 * Filling the stats segment (stats/layout.h, stats/writer.c).
 *
 * Counting costs the allocation path nothing: the per-node figures come
 * from jemalloc's own per-arena statistics (kept anyway; folded from the
 * thread caches by the "epoch" refresh), from our slow paths (remote frees,
 * placed mappings) and from a page sampler. The segment is refreshed at
 * most NS_STATS_PERIOD_MS apart, from jemalloc's per-thread activity
 * callback (about every 64 KiB a thread allocates or frees), so an idle
 * process shows its last figures with their time. The first refresh comes
 * one period after the start (or the fork): a refresh is an "epoch" merge
 * of every arena's statistics, 0.3-0.9 M instructions and some 30 page
 * faults the first time, which a process that lives for milliseconds
 * would pay for figures no one can read before it is gone.
 *
 * The refresh itself runs on a helper thread once an active numashim's
 * program has threads of its own (started at its first pthread_create, it
 * ends when it is the last thread left): the epoch merge took
 * 0.16-0.46 ms here with 4-32 arenas (perf probe on refresh, bench/service
 * under 2 emulated nodes), a pause that would otherwise land in one of the
 * program's allocations every second. The callback only wakes the helper
 * (a futex, about 1 us). A single-threaded program, a forked child before
 * its first thread, and NUMASHIM_STATS=inline refresh in the callback as
 * before: a helper thread must not be what makes a program multi-threaded
 * (unshare(CLONE_NEWUSER) refuses multi-threaded callers).
 */
#include "shim/shim.h"
#include "shim/log.h"
#include "shim/os.h"
#include "stats/stale.h"
#include "stats/writer.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_STATS_PERIOD_MS 1000
#define NS_STALE_PERIOD_MS 600000 /* 10 min: every process scans */
#define SAMPLE_PAGES 16            /* per node set and refresh */
#define MAX_ARENAS_PER_SET 64

enum { ST_SMALL_ALLOC, ST_SMALL_NMALLOC, ST_SMALL_NDALLOC,
       ST_LARGE_ALLOC, ST_LARGE_NMALLOC, ST_LARGE_NDALLOC, ST_NR };

static const char *const st_names[ST_NR] = {
	"stats.arenas.0.small.allocated", "stats.arenas.0.small.nmalloc",
	"stats.arenas.0.small.ndalloc", "stats.arenas.0.large.allocated",
	"stats.arenas.0.large.nmalloc", "stats.arenas.0.large.ndalloc",
};

static struct {
	struct ns_stats_segment *seg;
	char name[STATS_NAME_MAX];
	int lock;                   /* try-lock: one refresher at a time */
	bool enabled, pending;      /* pending: create on the next tick */
	uint64_t last_ms, rng;
	size_t mib[ST_NR][5], miblen[ST_NR], epoch_mib[1], epoch_miblen;
	uint64_t sampled[POLICY_MAX_NODES], found[POLICY_MAX_NODES],
		 fallback[POLICY_MAX_NODES];
	int create_warned;
	int helper;                 /* 0 none yet, 1 running, -1 never */
	uint32_t wake;              /* futex: 1 = a refresh is due */
	char comm[17];              /* the process's name, for the header */
	uint64_t last_stale_ms;     /* the helper's last remove_stale */
	pid_t owner;                /* the process that made the segment */
	cpu_set_t start_cpus;       /* the process's affinity at start */
	bool start_cpus_ok;
	int start_policy;           /* and its scheduling policy */
} S;

/* The process's name, read where the calling thread is the process's only
 * one (the constructor, a fork's child): the segment may be made later, in
 * another thread, whose name PR_GET_NAME would give. One system call where
 * reading /proc/self/comm takes four (about 5 us of a process start). */
static void save_comm(void)
{
	if (prctl(PR_GET_NAME, S.comm, 0, 0, 0) != 0)
		S.comm[0] = '\0';
	S.comm[16] = '\0';
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Start time in clock ticks since boot (/proc/self/stat field 22): with
 * the pid, it names the segment and tells the tool it is still ours. */
static uint64_t start_time(void)
{
	uint64_t v = 0;

	return stats_proc_start(0, &v) == 0 ? v : 0;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void fill_identity(struct ns_stats_header *h)
{
	char buf[256], list[96];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	const char *strict = ns.cfg.strict ? " strict" : " advisory";

	buf[n > 0 ? n : 0] = '\0';
	copy_str(h->exe, sizeof(h->exe), buf);
	copy_str(h->comm, sizeof(h->comm), S.comm);
	h->active = ns.active;
	h->fake_nodes = (uint32_t)ns.topo.fake;
	h->node_count = (uint32_t)(ns.topo.nr_nodes > 0 ? ns.topo.nr_nodes : 1);
	h->node_mask = ns.topo.online ? ns.topo.online : 1;
	policy_format_nodelist(ns.active ? ns.plan.nodes : h->node_mask, list,
			       sizeof(list));
	buf[0] = '\0';
	strcat(buf, ns.active ? policy_mode_name(ns.plan.mode) : "passthrough");
	strcat(buf, " nodes ");
	strcat(buf, list);
	strcat(buf, strict);
	copy_str(h->policy, sizeof(h->policy), buf);
}

/* May run inside malloc (a forked child's first refresh, inline): the
 * program's errno is left as it was. */
static void create(void)
{
	int err = 0, saved = errno;

	S.pending = false;
	S.seg = stats_create(getpid(), start_time(), S.name, &err);
	if (S.seg == NULL) {
		ns_log_once(&S.create_warned, "creating the stats segment", err,
			    "numashim stat cannot see this process");
	} else {
		fill_identity(&S.seg->h);
		S.seg->h.pid_ns = stats_pid_ns();
		/* Published after the name is complete: see ns_stats_exit_now. */
		__atomic_store_n(&S.owner, S.seg->h.pid, __ATOMIC_RELEASE);
	}
	errno = saved;
}

static uint64_t arena_stat(int which, unsigned arena)
{
	uint64_t v = 0;
	size_t mib[5], len = sizeof(v);

	memcpy(mib, S.mib[which], sizeof(mib));
	mib[2] = arena;
	/* allocated is a size_t, the counters uint64_t: both 8 bytes here. */
	if (nsje_mallctlbymib(mib, S.miblen[which], &v, &len, NULL, 0))
		return 0;
	return v;
}

/* Adds `v` to field `off` of the nodes a set places on, split by weight
 * (an interleaved set's bytes are spread over its nodes). */
static void spread(struct ns_stats_node *nodes, int set, size_t off, uint64_t v)
{
	const struct policy_set *s = &ns.plan.set[set];
	uint64_t total = 0;
	int last = -1;
	uint64_t given = 0;

	for (int n = 0; n < POLICY_MAX_NODES; n++)
		if (s->vmask & policy_node_bit(n))
			total += ns.cfg.weight[n] ? ns.cfg.weight[n] : 1;
	if (total == 0)
		return;
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		uint64_t w, part;

		if (!(s->vmask & policy_node_bit(n)))
			continue;
		w = ns.cfg.weight[n] ? ns.cfg.weight[n] : 1;
		part = v / total * w + v % total * w / total;
		*(uint64_t *)((char *)&nodes[n] + off) += part;
		given += part;
		last = n;
	}
	if (last >= 0) /* rounding leftovers go to the last node */
		*(uint64_t *)((char *)&nodes[last] + off) += v - given;
}

#define SPREAD(nodes, set, field, v) \
	spread(nodes, set, offsetof(struct ns_stats_node, field), v)

/* Where do pages meant for a node set's node really sit? */
static void sample(int set)
{
	const struct policy_set *s = &ns.plan.set[set];
	void *pages[SAMPLE_PAGES];
	int status[SAMPLE_PAGES], n = 0;

	if (s->node < 0)
		return;
	for (unsigned k = 0; k < NS_RECENT && n < SAMPLE_PAGES; k++) {
		uintptr_t addr;
		size_t size;

		if (!ns_arena_recent(set, k, &addr, &size))
			continue;
		S.rng = S.rng * 6364136223846793005ULL + 1442695040888963407ULL;
		pages[n++] = (void *)((addr + (S.rng >> 17) % size) & ~(uintptr_t)4095);
	}
	if (n == 0 || os_move_pages_query((unsigned long)n, pages, status))
		return;
	for (int i = 0; i < n; i++) {
		if (status[i] < 0)
			continue; /* not touched yet: nothing to say */
		S.sampled[s->node]++;
		if (s->mask & policy_node_bit(status[i]))
			S.found[s->node]++;
		else
			S.fallback[s->node]++;
	}
}

static void collect(struct ns_stats_node *nodes)
{
	uint64_t one = 1, mbytes[POLICY_MAX_SETS] = { 0 },
		 mcount[POLICY_MAX_SETS] = { 0 };
	size_t len = sizeof(one);

	/* Fold the thread caches' counts into the arenas' statistics. */
	nsje_mallctl("epoch", NULL, NULL, &one, len);
	if (!ns.active) {
		unsigned all = MALLCTL_ARENAS_ALL;
		struct ns_stats_node *n0 = &nodes[0];

		n0->live_bytes[NS_BAND_SMALL] = arena_stat(ST_SMALL_ALLOC, all);
		n0->live_bytes[NS_BAND_LARGE] = arena_stat(ST_LARGE_ALLOC, all);
		n0->allocs = arena_stat(ST_SMALL_NMALLOC, all) +
			     arena_stat(ST_LARGE_NMALLOC, all);
		n0->frees = arena_stat(ST_SMALL_NDALLOC, all) +
			    arena_stat(ST_LARGE_NDALLOC, all);
		n0->live_count[NS_BAND_SMALL] = arena_stat(ST_SMALL_NMALLOC, all) -
						arena_stat(ST_SMALL_NDALLOC, all);
		n0->live_count[NS_BAND_LARGE] = arena_stat(ST_LARGE_NMALLOC, all) -
						arena_stat(ST_LARGE_NDALLOC, all);
		return;
	}
	ns_mmap_live(mbytes, mcount);
	for (int s = 0; s < ns.plan.nr_sets; s++) {
		unsigned arenas[MAX_ARENAS_PER_SET];
		int threads, na = ns_arena_list(s, arenas, MAX_ARENAS_PER_SET,
						&threads);
		uint64_t v[ST_NR] = { 0 };
		bool large = s == ns.plan.large_set;

		for (int a = 0; a < na; a++)
			for (int k = 0; k < ST_NR; k++)
				v[k] += arena_stat(k, arenas[a]);
		SPREAD(nodes, s, live_bytes[NS_BAND_SMALL], v[ST_SMALL_ALLOC]);
		SPREAD(nodes, s, live_bytes[NS_BAND_LARGE], v[ST_LARGE_ALLOC]);
		SPREAD(nodes, s, live_count[NS_BAND_SMALL],
		       v[ST_SMALL_NMALLOC] - v[ST_SMALL_NDALLOC]);
		SPREAD(nodes, s, live_count[NS_BAND_LARGE],
		       v[ST_LARGE_NMALLOC] - v[ST_LARGE_NDALLOC]);
		SPREAD(nodes, s, allocs, v[ST_SMALL_NMALLOC] + v[ST_LARGE_NMALLOC]);
		SPREAD(nodes, s, frees, v[ST_SMALL_NDALLOC] + v[ST_LARGE_NDALLOC]);
		SPREAD(nodes, s, live_bytes[NS_BAND_MMAP], mbytes[s]);
		SPREAD(nodes, s, live_count[NS_BAND_MMAP], mcount[s]);
		if (large || ns.plan.set[s].mpol == POLICY_MPOL_INTERLEAVE)
			SPREAD(nodes, s, interleaved_bytes,
			       v[ST_LARGE_ALLOC] + v[ST_SMALL_ALLOC] + mbytes[s]);
		SPREAD(nodes, s, remote_frees,
		       __atomic_load_n(&ns_count.remote_frees_set[s],
				       __ATOMIC_RELAXED));
		SPREAD(nodes, s, threads, (uint64_t)threads);
		sample(s);
	}
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		nodes[n].sampled_pages = S.sampled[n];
		nodes[n].found_pages = S.found[n];
		nodes[n].fallbacks = S.fallback[n];
	}
}

static void refresh(void)
{
	struct ns_stats_node nodes[NS_STATS_MAX_NODES];
	struct ns_stats_header *h = &S.seg->h;
	struct timespec ts;

	memset(nodes, 0, sizeof(nodes));
	collect(nodes);
	clock_gettime(CLOCK_REALTIME, &ts);
	stats_write_begin(S.seg);
	memcpy(S.seg->node, nodes, sizeof(nodes));
	h->updated_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	h->updates++;
	h->active = ns.active;
	h->mmap_placed = ns_count.mmap_placed;
	h->mmap_placed_bytes = ns_count.mmap_placed_bytes;
	for (int r = 0; r < NS_STATS_LEFT_REASONS && r < NS_LEFT_REASONS; r++)
		h->mmap_left[r] = ns_count.mmap_left[r];
	h->shm_placed = ns_count.shm_placed;
	h->shm_placed_bytes = ns_count.shm_placed_bytes;
	h->shm_attached = ns_count.shm_attached;
	h->program_mbind = ns_count.program_mbind;
	h->program_set_mempolicy = ns_count.program_set_mempolicy;
	stats_write_end(S.seg);
}

/* One refresh, and the segment first if it is still to be made; the
 * caller holds S.lock. */
static void refresh_locked(void)
{
	if (S.pending)
		create();
	if (S.seg)
		refresh();
}

static void refresh_now(void)
{
	if (__atomic_exchange_n(&S.lock, 1, __ATOMIC_ACQUIRE))
		return; /* another thread is at it, or the process is ending */
	refresh_locked();
	__atomic_store_n(&S.lock, 0, __ATOMIC_RELEASE);
}

/*
 * True when the helper is the process's last live thread. glibc ends a
 * process when its last thread ends (exit(0)), and counts the helper as
 * one: a program whose main thread calls pthread_exit would otherwise live
 * on with only the helper. procfs gives a task directory 2 + threads links,
 * and a main thread that called pthread_exit stays listed, as a zombie,
 * until the whole process ends.
 */
static bool last_live_thread(void)
{
	struct stat st;
	uint64_t start;
	char state;

	if (stat("/proc/self/task", &st) != 0 || st.st_nlink > 4)
		return false;
	if (st.st_nlink <= 3)
		return true;
	/* The helper and one other: is that other the main thread, gone? */
	return stats_proc_stat(0, &start, &state) == 0 &&
	       (state == 'Z' || state == 'X');
}

/*
 * At the first refresh and then every NS_STALE_PERIOD_MS: the segments of
 * this user's processes that ended without removing theirs (see
 * stats_remove_stale for what counts as ended): killed ones, and those
 * that made the exit_group system call themselves (_exit and _Exit remove
 * theirs, shim/exit.c). Only here, on the helper thread, where opendir may
 * allocate.
 */
static void remove_stale(void)
{
	uint64_t now = now_ms();

	if (S.last_stale_ms != 0 && now - S.last_stale_ms < NS_STALE_PERIOD_MS)
		return;
	S.last_stale_ms = now;
	stats_remove_stale("/dev/shm", getpid());
}

static void *helper(void *unused)
{
	/* How often an idle helper checks whether it is the last thread: the
	 * delay a program whose last thread just ended waits for its exit. */
	const struct timespec check = { 0, 500 * 1000000L };

	(void)unused;
	prctl(PR_SET_NAME, "numashim-stats", 0, 0, 0);
	for (;;) {
		while (__atomic_load_n(&S.wake, __ATOMIC_ACQUIRE) == 0) {
			long rc = syscall(SYS_futex, &S.wake, FUTEX_WAIT_PRIVATE,
					  0, &check, NULL, 0);

			if (rc != 0 && errno == ETIMEDOUT && last_live_thread()) {
				__atomic_store_n(&S.helper, 0, __ATOMIC_RELEASE);
				return NULL; /* glibc ends the process */
			}
		}
		if (__atomic_load_n(&S.enabled, __ATOMIC_ACQUIRE))
			refresh_now();
		__atomic_store_n(&S.wake, 0, __ATOMIC_RELEASE);
		if (__atomic_load_n(&S.enabled, __ATOMIC_ACQUIRE))
			remove_stale();
	}
	return NULL;
}

void ns_stats_tick(void)
{
	uint64_t now;

	if (!__atomic_load_n(&S.enabled, __ATOMIC_RELAXED))
		return;
	now = now_ms();
	if (now - __atomic_load_n(&S.last_ms, __ATOMIC_RELAXED) < NS_STATS_PERIOD_MS)
		return;
	if (__atomic_load_n(&S.helper, __ATOMIC_ACQUIRE) == 1) {
		if (__atomic_exchange_n(&S.wake, 1, __ATOMIC_ACQ_REL) == 0) {
			__atomic_store_n(&S.last_ms, now, __ATOMIC_RELAXED);
			syscall(SYS_futex, &S.wake, FUTEX_WAKE_PRIVATE, 1, NULL,
				NULL, 0);
		}
		return;
	}
	if (__atomic_exchange_n(&S.lock, 1, __ATOMIC_ACQUIRE))
		return; /* another thread is at it */
	/* Checked again under the lock: another thread may have just done it. */
	if (now - __atomic_load_n(&S.last_ms, __ATOMIC_RELAXED) >= NS_STATS_PERIOD_MS) {
		__atomic_store_n(&S.last_ms, now, __ATOMIC_RELAXED);
		refresh_locked();
	}
	__atomic_store_n(&S.lock, 0, __ATOMIC_RELEASE);
}

/*
 * The helper's attributes: detached, every signal blocked, and placed as
 * the process was at its start, not as the thread that happens to create
 * it is: that thread may have pinned itself to a CPU it keeps for itself,
 * or run at a real-time priority. The helper gets the start's CPU mask and
 * SCHED_OTHER (SCHED_BATCH or SCHED_IDLE if the process started so): a
 * refresh must never preempt the program's own threads. `placed` false:
 * everything inherited, the fallback when the start's mask or policy is
 * not allowed any more (a cpuset that shrank, a thread that may not leave
 * SCHED_IDLE).
 */
static int helper_attr(pthread_attr_t *attr, bool placed)
{
	struct sched_param prio = { 0 };
	int policy = S.start_policy;
	sigset_t all;

	if (pthread_attr_init(attr))
		return -1;
	pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(attr, 1 << 20); /* it touches some 20 KiB */
	sigfillset(&all);
	/* glibc leaves out the signals it needs itself (setxid, cancel). */
	pthread_attr_setsigmask_np(attr, &all);
	if (!placed)
		return 0;
	if (S.start_cpus_ok)
		pthread_attr_setaffinity_np(attr, sizeof(S.start_cpus),
					    &S.start_cpus);
	if (policy != SCHED_BATCH && policy != SCHED_IDLE)
		policy = SCHED_OTHER;
	if (pthread_attr_setinheritsched(attr, PTHREAD_EXPLICIT_SCHED) == 0) {
		pthread_attr_setschedpolicy(attr, policy);
		pthread_attr_setschedparam(attr, &prio);
	}
	return 0;
}

/*
 * From our pthread_create, once the program's new thread runs: the helper
 * that refreshes the segment, when numashim is active (passing through,
 * only the main thread has the activity callback, and numashim adds no
 * thread to a program it leaves alone). It names itself numashim-stats for
 * top and ps and allocates through no node arena. If it cannot be made,
 * the refresh stays inline.
 */
void ns_stats_thread_start(ns_create_fn create)
{
	int zero = 0, rc = -1;
	pthread_attr_t attr;
	pthread_t t;

	if (!ns.active || !__atomic_load_n(&S.enabled, __ATOMIC_RELAXED) ||
	    ns.cfg.stats_inline || (S.seg == NULL && !S.pending) ||
	    !__atomic_compare_exchange_n(&S.helper, &zero, -1, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	for (int placed = 1; placed >= 0 && rc != 0; placed--) {
		if (helper_attr(&attr, placed))
			return;
		rc = create(&t, &attr, helper, NULL);
		pthread_attr_destroy(&attr);
		if (rc != EPERM && rc != EINVAL)
			break;
	}
	if (rc == 0)
		__atomic_store_n(&S.helper, 1, __ATOMIC_RELEASE);
}

void ns_stats_init(void)
{
	if (!ns.cfg.stats)
		return;
	for (int k = 0; k < ST_NR; k++) {
		S.miblen[k] = 5;
		if (nsje_mallctlnametomib(st_names[k], S.mib[k], &S.miblen[k]))
			return; /* a jemalloc without stats: no segment */
	}
	S.rng = (uint64_t)getpid();
	save_comm();
	if (ns.active) { /* for the helper; a fork's child keeps these */
		S.start_cpus_ok = sched_getaffinity(0, sizeof(S.start_cpus),
						    &S.start_cpus) == 0;
		S.start_policy = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
	}
	S.enabled = true;
	S.last_ms = now_ms();
	/* The segment now ("not updated yet" to the tool), its figures at the
	 * first tick a period from now. */
	create();
}

/* The child has its parent's mapping, not a segment of its own: drop the
 * mapping (the parent still uses the file) and make its own lazily, on the
 * first refresh, so a fork that execs at once leaves nothing behind. */
void ns_stats_forked(void)
{
	if (!S.enabled)
		return;
	if (S.seg)
		stats_destroy(S.seg, S.name, 0);
	S.seg = NULL;
	S.owner = 0;
	/* The name is the parent's segment's: a child that exits before it
	 * has one of its own must not remove the parent's. */
	S.name[0] = '\0';
	save_comm();
	S.lock = 0;
	/* The helper did not come along: inline until the child's first
	 * thread starts one of its own. */
	S.helper = 0;
	S.wake = 0;
	S.last_stale_ms = 0;
	S.last_ms = now_ms();
	S.pending = true;
	memset(S.sampled, 0, sizeof(S.sampled));
	memset(S.found, 0, sizeof(S.found));
	memset(S.fallback, 0, sizeof(S.fallback));
}

__attribute__((destructor)) static void stats_exit(void)
{
	bool locked = false;

	if (!S.enabled)
		return;
	__atomic_store_n(&S.enabled, false, __ATOMIC_RELEASE); /* no new refresh starts */
	/* Wait (boundedly) for a refresh in flight; the lock stays taken. */
	for (int i = 0; i < 1000 && !locked; i++) {
		locked = !__atomic_exchange_n(&S.lock, 1, __ATOMIC_ACQUIRE);
		if (!locked)
			sched_yield();
	}
	/* Unlinking is safe while mapped; unmapping only if no one writes. */
	stats_destroy(locked ? S.seg : NULL, S.name, 1);
	__atomic_store_n(&S.owner, 0, __ATOMIC_RELEASE);
	if (locked)
		S.seg = NULL;
}

/*
 * From _exit and _Exit (shim/exit.c), perhaps in a signal handler or a
 * vfork child: async-signal-safe calls only (getpid, strcpy, unlink), no
 * lock, no unmapping (a refresh may be writing; the process ends anyway).
 * Only the process that made the segment removes its file: a vfork child
 * runs in its parent's memory, segment name included, under a pid of its
 * own, and a child of a raw clone() has the name without our fork handler.
 */
void ns_stats_exit_now(void)
{
	pid_t owner = __atomic_load_n(&S.owner, __ATOMIC_ACQUIRE);

	if (owner > 0 && owner == getpid())
		stats_destroy(NULL, S.name, 1);
}
