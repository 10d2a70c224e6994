/*
 * `numashim doctor`: the checks the usual NUMA diagnosis guides have an
 * operator make by hand (numactl --hardware, numastat, numastat -p,
 * numa_maps, the vm and kernel sysctls), made at once, each finding rated
 * and paired with what to do about it:
 *
 *   topology        nodes, their CPUs and memory (sysfs)
 *   remote-access   per node, the share of pages allocated on it for tasks
 *                   running on another node (numastat other_node against
 *                   local_node), rated as the guides rate remote access:
 *                   <5 % normal, 5-10 monitor, 10-20 investigate, >20
 *                   critical; since boot, or over --interval seconds
 *   node-full       allocations meant for a node that landed elsewhere
 *                   because it was full (numa_foreign), and a node nearly
 *                   out of free memory while another has plenty
 *   zone-reclaim    vm.zone_reclaim_mode other than 0 (reclaims on the
 *                   local node before using free memory on another)
 *   numa-balancing  kernel.numa_balancing, for the record
 *   processes       the processes under numashim (stats segments, and a
 *                   count of those with none yet), the remote pages of
 *                   those that place memory, stale ones
 *   pid N           for each PID given: where its memory is (numa_maps)
 *                   against where it may run (Cpus_allowed_list), where
 *                   its cpuset lets it take memory (Mems_allowed_list)
 *                   against the same, whether numashim is in it, its
 *                   remote pages if so
 *
 * Levels: ok, info, warn, critical. Exit status 0 when nothing is at warn
 * or above, 1 otherwise or when a PID given cannot be examined, 2 on bad
 * usage: a health check for scripts and monitoring.
 *
 * --root DIR reads DIR/sys and DIR/proc instead of /sys and /proc (tests
 * build such trees); every file is untrusted text: unreadable or garbled
 * input gives a finding that says so, never a crash.
 */
#include "tools/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_name[] = { "ok", "info", "warn", "critical" };

/* The numastat counters read, in enum st order. */
static const char *const st_key[ST_NR] = {
	"local_node", "other_node", "numa_foreign", "numa_hit", "interleave_hit",
};

void doctor_add(struct doctor *d, enum level l, const char *check,
		const char *fix, const char *fmt, ...)
{
	struct finding *f;
	va_list ap;

	if (l > d->worst)
		d->worst = l;
	if (d->n == MAX_FINDINGS) {
		d->dropped++;
		return;
	}
	f = &d->f[d->n++];
	f->level = l;
	snprintf(f->check, sizeof(f->check), "%s", check);
	snprintf(f->fix, sizeof(f->fix), "%s", fix ? fix : "");
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

/* The text of ROOT/rel, NUL-terminated (cut to len - 1). 0 or -errno. */
int doctor_read(const struct doctor *d, const char *rel, char *buf,
		size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s%s", d->root, rel);
	return stats_read_small(path, buf, len);
}

/* A decimal number at s (after blanks); false if there is none. */
bool doctor_number(const char *s, uint64_t *v)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && end != s;
}

/* The number after `key` at the start of a line of text ("key value"). */
static bool keyed(const char *text, const char *key, uint64_t *v)
{
	size_t k = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
		if (strncmp(l, key, k) == 0 && (l[k] == ' ' || l[k] == ':' ||
						 l[k] == '\t'))
			return doctor_number(l + k + (l[k] == ':'), v);
	return false;
}

static double gib(uint64_t kb)
{
	return (double)kb / (1024.0 * 1024.0);
}

enum level doctor_level(double pct)
{
	const char *l = tool_level(pct);

	if (strcmp(l, "normal") == 0)
		return L_OK;
	if (strcmp(l, "monitor") == 0)
		return L_INFO;
	return strcmp(l, "investigate") == 0 ? L_WARN : L_CRIT;
}

/* ------------------------------------------------------------ the host */

/* Lists are parsed with a limit far above our tables; ids beyond them are
 * skipped and counted (a node 252 on POWER, CPU 1500 on a big box) rather
 * than failing the whole list. */
#define LIST_LIMIT (1L << 20)
#define CPULIST_MAX 16384         /* "0,2,4,...": 5 bytes a CPU */
#define SHOWN_NODES 8             /* nodes listed on the topology line */

static void add_node(void *ctx, long id)
{
	struct doctor *d = ctx;

	if (id < POLICY_MAX_NODES && d->nodes < POLICY_MAX_NODES)
		d->node[d->nodes++].id = (int)id;
	else
		d->skipped_nodes++;
}

/* ctx: the node's index in d->node; cpu_node[] gets its id. */
static void add_cpu(void *ctx, long cpu)
{
	struct list_ctx *c = ctx;
	struct node *nd = &c->d->node[c->node];

	nd->has_cpus = true;
	if (cpu < POLICY_MAX_CPUS)
		c->d->cpu_node[cpu] = (int8_t)nd->id;
	else
		c->d->skipped_cpus++;
}

static void read_numastat(struct doctor *d, struct node *nd)
{
	char rel[96], text[2048];

	snprintf(rel, sizeof(rel), "/sys/devices/system/node/node%d/numastat", nd->id);
	nd->stat_ok = doctor_read(d, rel, text, sizeof(text)) == 0;
	for (int k = 0; k < ST_NR && nd->stat_ok; k++)
		nd->stat_ok = keyed(text, st_key[k], &nd->stat[k]);
}

static void read_node(struct doctor *d, int i)
{
	struct node *nd = &d->node[i];
	struct list_ctx c = { d, i };
	char rel[96], text[4096], key[48];
	char *cpus = malloc(CPULIST_MAX);

	snprintf(nd->cpus, sizeof(nd->cpus), "?");
	snprintf(rel, sizeof(rel), "/sys/devices/system/node/node%d/cpulist", nd->id);
	if (cpus && doctor_read(d, rel, cpus, CPULIST_MAX) == 0) {
		cpus[strcspn(cpus, "\n")] = '\0';
		nd->cpus_known = policy_list_foreach(cpus, LIST_LIMIT, add_cpu, &c) == 0;
		if (!nd->cpus_known) { /* undo what came before the bad token */
			nd->has_cpus = false;
			for (int k = 0; k < POLICY_MAX_CPUS; k++)
				if (d->cpu_node[k] == nd->id)
					d->cpu_node[k] = -1;
		} else {
			/* shown cut, with "..." */
			if (strlen(cpus) >= sizeof(nd->cpus))
				strcpy(cpus + sizeof(nd->cpus) - 4, "...");
			snprintf(nd->cpus, sizeof(nd->cpus), "%s", cpus);
		}
	}
	free(cpus);
	snprintf(rel, sizeof(rel), "/sys/devices/system/node/node%d/meminfo", nd->id);
	if (doctor_read(d, rel, text, sizeof(text)) == 0) {
		/* "Node 0 MemTotal:       16337548 kB" */
		char *p;

		snprintf(key, sizeof(key), "Node %d MemTotal:", nd->id);
		p = strstr(text, key);
		nd->mem_ok = p && doctor_number(p + strlen(key), &nd->total_kb);
		snprintf(key, sizeof(key), "Node %d MemFree:", nd->id);
		p = strstr(text, key);
		nd->mem_ok = nd->mem_ok && p && doctor_number(p + strlen(key), &nd->free_kb) &&
			     nd->free_kb <= nd->total_kb;
	}
	read_numastat(d, nd);
}

/* free / total in %, 0 when unknown */
static double free_pct(const struct node *nd)
{
	return nd->mem_ok && nd->total_kb ?
	       100.0 * (double)nd->free_kb / (double)nd->total_kb : 0.0;
}

static void check_topology(struct doctor *d)
{
	char text[4096], line[sizeof(d->f[0].text)];
	size_t at = 0;
	int with_mem = 0, cpuless = 0;

	memset(d->cpu_node, -1, sizeof(d->cpu_node));
	if (doctor_read(d, "/sys/devices/system/node/online", text, sizeof(text)) ||
	    policy_list_foreach(text, LIST_LIMIT, add_node, d) || d->nodes == 0) {
		d->nodes = 0;
		doctor_add(d, L_INFO, "topology", NULL, "no NUMA nodes in %s/sys/devices/"
		    "system/node (a kernel without NUMA): one node, numashim "
		    "passes through", d->root);
		return;
	}
	for (int i = 0; i < d->nodes; i++) {
		struct node *nd = &d->node[i];

		read_node(d, i);
		if (nd->mem_ok && nd->total_kb > 0)
			with_mem++;
		if (nd->cpus_known && !nd->has_cpus)
			cpuless++;
		if (i == SHOWN_NODES && at < sizeof(line))
			at += (size_t)snprintf(line + at, sizeof(line) - at,
					       "; and %d more", d->nodes - i);
		if (i >= SHOWN_NODES || at >= sizeof(line))
			continue;
		at += (size_t)snprintf(line + at, sizeof(line) - at,
				       "%snode %d cpus %s", i ? "; " : "", nd->id,
				       nd->has_cpus || !nd->cpus_known ? nd->cpus : "none");
		if (at < sizeof(line))
			at += (size_t)(nd->mem_ok ?
				snprintf(line + at, sizeof(line) - at,
					 " %.1f GiB (%.0f %% free)", gib(nd->total_kb),
					 free_pct(nd)) :
				snprintf(line + at, sizeof(line) - at, " memory ?"));
	}
	if (d->nodes == 1 || with_mem <= 1)
		doctor_add(d, L_INFO, "topology", NULL, "%d node%s, %d with memory: nothing "
		    "to place, numashim passes through (%s)", d->nodes,
		    d->nodes == 1 ? "" : "s", with_mem, line);
	else
		doctor_add(d, L_OK, "topology", NULL, "%d nodes, %d with memory%s: %s",
		    d->nodes, with_mem, cpuless ? " (some without CPUs: their "
		    "memory serves the nearest CPUs' threads)" : "", line);
	if (d->skipped_nodes || d->skipped_cpus)
		doctor_add(d, L_INFO, "topology", NULL, "not examined: %d node%s with "
		    "an id above %d, %d CPU%s with an id above %d",
		    d->skipped_nodes, d->skipped_nodes == 1 ? "" : "s",
		    POLICY_MAX_NODES - 1, d->skipped_cpus,
		    d->skipped_cpus == 1 ? "" : "s", POLICY_MAX_CPUS - 1);
}

/* A second reading of every node's numastat after d->interval seconds:
 * the counters become the difference (the rates the guides' PromQL uses). */
static void take_interval(struct doctor *d)
{
	uint64_t first[POLICY_MAX_NODES][ST_NR];
	struct timespec ts;

	for (int i = 0; i < d->nodes; i++)
		memcpy(first[i], d->node[i].stat, sizeof(first[i]));
	ts.tv_sec = (time_t)d->interval;
	ts.tv_nsec = (long)((d->interval - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	for (int i = 0; i < d->nodes; i++) {
		struct node *nd = &d->node[i];
		bool was = nd->stat_ok;

		read_numastat(d, nd);
		for (int k = 0; k < ST_NR && nd->stat_ok; k++) {
			if (!was || nd->stat[k] < first[i][k])
				nd->stat_ok = false; /* a counter went back */
			else
				nd->stat[k] -= first[i][k];
		}
	}
}

/*
 * The kernel counts a page in other_node when the task it was allocated
 * for ran on another node, whatever the reason: pages interleaved on
 * purpose (numactl --interleave, numashim's large blocks) count there too.
 * interleave_hit counts the interleaved pages placed on the node, local
 * or not; spread over M nodes with memory, about (M - 1) / M of them went
 * to tasks elsewhere, and that much is taken off (an estimate, said so).
 * A node known to have no CPUs serves only other nodes' tasks: its
 * other_node is everything, by the machine's design, and it is not rated.
 */
static void check_remote(struct doctor *d)
{
	const char *span = d->interval > 0 ? "in the interval" : "since boot";
	double tl = 0, to = 0;
	int bad = 0, unread = 0, cpuless = 0, with_mem = 0;

	for (int i = 0; i < d->nodes; i++)
		with_mem += d->node[i].mem_ok && d->node[i].total_kb > 0;
	if (with_mem < 1)
		with_mem = 1;
	for (int i = 0; i < d->nodes; i++) {
		struct node *nd = &d->node[i];
		uint64_t il = nd->stat[ST_INTERLEAVE];
		double l = (double)nd->stat[ST_LOCAL], o, pct, spread;
		enum level lv;

		if (!nd->stat_ok) {
			unread++;
			continue;
		}
		if (nd->cpus_known && !nd->has_cpus) {
			cpuless++;
			continue;
		}
		spread = (double)il * (with_mem - 1) / with_mem;
		o = (double)nd->stat[ST_OTHER] > spread ?
		    (double)nd->stat[ST_OTHER] - spread : 0;
		tl += l, to += o;
		if (l + o <= 0)
			continue;
		pct = 100.0 * o / (l + o);
		lv = doctor_level(pct);
		if (lv == L_OK)
			continue;
		bad++;
		doctor_add(d, lv, "remote-access", "numashim stat shows which "
		    "processes under numashim get remote pages; run the service "
		    "under numashim (numashim dropin SERVICE --write), or bind it "
		    "to a node (numactl --cpunodebind=N --membind=N)",
		    "node %d: " TOOL_PCT " %% of the pages allocated on it %s "
		    "went to tasks running on another node (other_node %llu, "
		    "less an estimated %.0f interleaved on purpose; local_node "
		    "%llu): %s", nd->id,
		    pct, span, (unsigned long long)nd->stat[ST_OTHER], spread,
		    (unsigned long long)nd->stat[ST_LOCAL], tool_level(pct));
	}
	if (unread)
		doctor_add(d, L_INFO, "remote-access", NULL, "%d node%s without "
		    "readable numastat counters", unread, unread == 1 ? "" : "s");
	if (cpuless)
		doctor_add(d, L_INFO, "remote-access", NULL, "%d node%s without "
		    "CPUs not rated: every page there is for a task on another "
		    "node", cpuless, cpuless == 1 ? "" : "s");
	if (!bad && tl + to > 0)
		doctor_add(d, L_OK, "remote-access", NULL, TOOL_PCT " %% of the "
		    "pages allocated %s went to a task on another node "
		    "(interleaved pages aside): normal (< 5 %%)",
		    100.0 * to / (tl + to), span);
	else if (!bad && !unread)
		doctor_add(d, L_OK, "remote-access", NULL, "no allocations %s", span);
}

static void check_full(struct doctor *d)
{
	double most_free = 0;

	for (int i = 0; i < d->nodes; i++)
		if (free_pct(&d->node[i]) > most_free)
			most_free = free_pct(&d->node[i]);
	for (int i = 0; i < d->nodes; i++) {
		struct node *nd = &d->node[i];
		double meant = (double)nd->stat[ST_HIT] + (double)nd->stat[ST_FOREIGN];
		double foreign = (double)nd->stat[ST_FOREIGN];

		if (nd->stat_ok && meant > 0 && foreign * 100.0 >= meant)
			doctor_add(d, L_WARN, "node-full", "see what fills it "
			    "(numastat -m, numastat -p PROCESS); spread big memory "
			    "over the nodes (NUMASHIM_INTERLEAVE_MIN, numactl "
			    "--interleave)", "node %d: %.1f %% of the pages meant for "
			    "it were placed on another node because it had none free "
			    "(numa_foreign %llu)", nd->id, 100.0 * foreign / meant,
			    (unsigned long long)nd->stat[ST_FOREIGN]);
		if (nd->mem_ok && nd->total_kb && free_pct(nd) < 5.0 &&
		    most_free >= 25.0)
			doctor_add(d, L_WARN, "node-full", "see what fills it "
			    "(numastat -m, numastat -p PROCESS)", "node %d has %.1f "
			    "%% of its memory free while another node has %.0f %%: "
			    "new allocations meant for it go remote", nd->id,
			    free_pct(nd), most_free);
	}
}

static void check_sysctls(struct doctor *d)
{
	char text[64];
	uint64_t v;

	if (doctor_read(d, "/proc/sys/vm/zone_reclaim_mode", text, sizeof(text)) == 0 &&
	    doctor_number(text, &v)) {
		if (v != 0 && d->nodes > 1)
			doctor_add(d, L_WARN, "zone-reclaim", "sysctl -w vm.zone_reclaim_mode=0 "
			    "(and in /etc/sysctl.d to keep it)", "vm.zone_reclaim_mode "
			    "= %llu: the kernel reclaims (drops caches, writes back) "
			    "on the local node before it uses free memory on another; "
			    "known to hurt databases and file servers",
			    (unsigned long long)v);
		else
			doctor_add(d, L_OK, "zone-reclaim", NULL, "vm.zone_reclaim_mode = %llu",
			    (unsigned long long)v);
	}
	if (doctor_read(d, "/proc/sys/kernel/numa_balancing", text, sizeof(text)) ||
	    !doctor_number(text, &v) || d->nodes < 2)
		return;
	if (v == 0)
		doctor_add(d, L_INFO, "numa-balancing", NULL, "kernel.numa_balancing "
		    "= 0: pages stay where they were first touched, so where that "
		    "is matters (numashim places them there)");
	else if (v == 1)
		doctor_add(d, L_INFO, "numa-balancing", NULL, "kernel.numa_balancing "
		    "= 1: the kernel samples page accesses and moves pages toward "
		    "the threads that use them; with numashim placing memory at "
		    "first touch it finds less to move (set 0 if its scans show "
		    "as latency spikes)");
	else
		doctor_add(d, L_INFO, "numa-balancing", NULL, "kernel.numa_balancing "
		    "= %llu: memory tiering (hot pages promoted from slower "
		    "memory-only nodes)%s", (unsigned long long)v,
		    v & 1 ? " and balancing between nodes" : "");
}

/* ------------------------------------------------------------ output */

static void print_text(const struct doctor *d)
{
	static const char *const shown[] = { "ok", "info", "WARN", "CRITICAL" };

	printf("numashim doctor: %d NUMA node%s (%s)\n", d->nodes ? d->nodes : 1,
	       d->nodes == 1 || d->nodes == 0 ? "" : "s",
	       d->interval > 0 ? "counters over the interval" :
	       "counters since boot");
	for (int i = 0; i < d->n; i++) {
		const struct finding *f = &d->f[i];

		printf("%-9s %-15s %s\n", shown[f->level], f->check, f->text);
		if (f->fix[0])
			printf("%-9s %-15s fix: %s\n", "", "", f->fix);
	}
	if (d->dropped)
		printf("%-9s %-15s %d more findings not shown (the worst of all: "
		       "%s)\n", shown[d->worst], "doctor", d->dropped,
		       level_name[d->worst]);
}

static void print_json(const struct doctor *d)
{
	printf("{\"nodes\": %d, \"interval\": %g, \"worst\": \"%s\", "
	       "\"not_shown\": %d, \"findings\": [", d->nodes ? d->nodes : 1,
	       d->interval, level_name[d->worst], d->dropped);
	for (int i = 0; i < d->n; i++) {
		const struct finding *f = &d->f[i];

		printf("%s\n  {\"check\": ", i ? "," : "");
		tool_json_str(stdout, f->check);
		printf(", \"level\": \"%s\", \"text\": ", level_name[f->level]);
		tool_json_str(stdout, f->text);
		fputs(", \"fix\": ", stdout);
		if (f->fix[0])
			tool_json_str(stdout, f->fix);
		else
			fputs("null", stdout);
		fputc('}', stdout);
	}
	puts("\n]}");
}

static void doctor_usage(FILE *f)
{
	fprintf(f, "usage: numashim doctor [PID...] [OPTIONS]\n"
		"Check the host's NUMA health and, for each PID, where its memory "
		"is against\nwhere it runs. Each finding is rated ok, info, warn "
		"or critical, with a fix.\nRemote access is rated as in the usual "
		"NUMA guides: <5 %% normal, 5-10 monitor,\n10-20 investigate, "
		">20 critical. Exit status 1 when something is at warn or\n"
		"above.\n\n"
		"  -i, --interval SECS   rate the kernel's counters over SECS "
		"seconds (default:\n                        since boot)\n"
		"  -j, --json            JSON: {\"nodes\", \"interval\", "
		"\"findings\": [...]}\n"
		"      --dir DIR         stats segments in DIR instead of "
		STATS_DIR "\n"
		"      --root DIR        read DIR/sys and DIR/proc (for tests "
		"and images)\n"
		"  -h, --help            this text\n");
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "dir", required_argument, NULL, 'd' },
		{ "root", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct doctor *d = calloc(1, sizeof(*d));
	int c;
	char *end;

	if (d == NULL) {
		tool_err("doctor: out of memory");
		return TOOL_FAIL;
	}
	d->root = "";
	d->dir = STATS_DIR;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:jh", opts, NULL)) != -1) {
		if (c == 'h') {
			doctor_usage(stdout);
			free(d);
			return TOOL_OK;
		} else if (c == 'i') {
			errno = 0;
			d->interval = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(d->interval > 0) ||
			    d->interval > 3600) {
				tool_err("doctor: --interval \"%s\": seconds, more "
					 "than 0 and at most 3600", optarg);
				free(d);
				return TOOL_USAGE;
			}
		} else if (c == 'j') {
			d->json = true;
		} else if (c == 'd') {
			d->dir = optarg;
		} else if (c == 'r') {
			d->root = strcmp(optarg, "/") ? optarg : "";
		} else {
			free(d);
			return tool_badopt("doctor", c, argv, opts);
		}
	}
	for (int i = optind; i < argc; i++) {
		long pid = strtol(argv[i], &end, 10);

		if (*argv[i] == '\0' || *end || pid <= 0 || pid > INT_MAX) {
			char clean[64];

			tool_clean(argv[i], clean, sizeof(clean));
			tool_err("doctor: \"%s\" is not a process id", clean);
			free(d);
			return TOOL_USAGE;
		}
	}
	check_topology(d);
	if (d->interval > 0 && d->nodes > 1)
		take_interval(d);
	if (d->nodes > 1) {
		check_remote(d);
		check_full(d);
	}
	check_sysctls(d);
	doctor_processes(d);
	for (int i = optind; i < argc; i++)
		doctor_pid(d, (int)strtol(argv[i], NULL, 10));
	if (d->json)
		print_json(d);
	else
		print_text(d);
	c = d->worst >= L_WARN || d->unreadable ? TOOL_FAIL : TOOL_OK;
	free(d);
	return c;
}
