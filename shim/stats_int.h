/* shim/stats.c's state, which the helper thread that refreshes the
 * segment (shim/stats_helper.c) shares. */
#ifndef NUMASHIM_SHIM_STATS_INT_H
#define NUMASHIM_SHIM_STATS_INT_H

#include "shim/shim.h"
#include "stats/writer.h"

#define NS_STATS_PERIOD_MS 1000

struct ns_stats_state {
	struct ns_stats_segment *seg;
	char name[STATS_NAME_MAX];
	int lock;                   /* try-lock: one refresher at a time */
	bool enabled, pending;      /* pending: create at the next refresh */
	uint64_t last_ms;
	int create_warned;
	int helper;                 /* 0 none yet, 2 starting, 1 running,
				     * -1 never */
	uint32_t wake;              /* futex: 1 = a refresh is due */
	char comm[17];              /* the process's name, for the header */
	uint64_t last_stale_ms;     /* the helper's last remove_stale */
	pid_t owner;                /* the process whose the name is: set once
				     * the name is complete (at the start, or
				     * as a forked child makes its segment) */
	pid_t self;                 /* the process this state is for */
	uint64_t start;             /* its start time, 0 until looked up */
	uint64_t image;             /* and its image (take_start) */
	uint64_t self_ns;           /* and its pid namespace (0: unknown) */
};
extern struct ns_stats_state ns_stats NS_HIDDEN;

/* A refresh unless another thread is at it (the helper's). */
NS_HIDDEN void ns_stats_refresh_now(void);

#endif
