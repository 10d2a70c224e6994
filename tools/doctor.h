/*
 * `numashim doctor` (doctor.c: the host's checks, the output and the
 * command; doctor_proc.c: the processes under numashim and the PIDs
 * given). Shared between the two files only.
 */
#ifndef NUMASHIM_TOOL_DOCTOR_H
#define NUMASHIM_TOOL_DOCTOR_H

#include "tools/tool.h"

#include "policy/policy.h"

#include <stdint.h>

enum level { L_OK, L_INFO, L_WARN, L_CRIT };

#define MAX_FINDINGS 512
#define SHOWN_PROCESSES 8   /* processes named one by one */
#define FIRST_TOUCH_MIN (64ULL << 20) /* smaller processes are not judged */

struct finding {
	enum level level;
	char check[24];
	char text[640];
	char fix[240];
};

/* The numastat counters doctor reads (doctor.c has their names). */
enum st { ST_LOCAL, ST_OTHER, ST_FOREIGN, ST_HIT, ST_INTERLEAVE, ST_NR };

struct node {
	int id;
	char cpus[128];
	bool has_cpus, cpus_known, mem_ok, stat_ok;
	uint64_t total_kb, free_kb;
	uint64_t stat[ST_NR];
};

struct doctor {
	const char *root, *dir;
	bool json;
	double interval;
	struct node node[POLICY_MAX_NODES];
	int nodes;
	int8_t cpu_node[POLICY_MAX_CPUS];
	struct finding f[MAX_FINDINGS];
	int n;
	int dropped;                /* findings beyond MAX_FINDINGS */
	enum level worst;           /* over all of them, dropped included */
	int skipped_nodes, skipped_cpus; /* ids beyond our tables */
	bool unreadable;            /* a PID given could not be examined */
};

struct list_ctx {
	struct doctor *d;
	int node;
};

/* One more finding (dropped beyond MAX_FINDINGS); fix may be NULL. */
void doctor_add(struct doctor *d, enum level l, const char *check,
		const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* The text of ROOT/rel, NUL-terminated (cut to len - 1). 0 or -errno. */
int doctor_read(const struct doctor *d, const char *rel, char *buf,
		size_t len);

/* A decimal number at s (after blanks); false if there is none. */
bool doctor_number(const char *s, uint64_t *v);

/* The level of a remote-access percentage on the guides' scale. */
enum level doctor_level(double pct);

void doctor_processes(struct doctor *d);
void doctor_pid(struct doctor *d, int pid);

#endif
