/*
 * The writer side of the stats segment (layout: stats/layout.h), used by
 * the shim. No malloc, no stdio: it runs inside the allocator.
 */
#ifndef NUMASHIM_STATS_WRITER_H
#define NUMASHIM_STATS_WRITER_H

#include "stats/layout.h"

#include <stddef.h>
#include <sys/types.h>

#define STATS_NAME_MAX 64

/* The file name of a segment, "numashim.<pid>.<start>". */
void stats_name(char name[STATS_NAME_MAX], pid_t pid, uint64_t start);

/* Removes /dev/shm/NAME if it is there: 1 if it was, else 0. Looks first,
 * so that a process that has nothing to remove makes no unlink call (a
 * seccomp filter may kill on one). */
int stats_remove_leftover(const char *name);

/*
 * Creates /dev/shm/numashim.<pid>.<start> (O_EXCL, 0600), sizes and maps
 * it, and fills version/sizes/pid/start; stats_publish, once the rest of
 * the header is in, writes the magic that readers wait for. A leftover of
 * this very process (same pid and start: it exec'ed) is replaced. Returns
 * the mapping, or NULL with -errno in *err. `name` receives the file name.
 */
struct ns_stats_segment *stats_create(pid_t pid, uint64_t start_time,
				      char name[STATS_NAME_MAX], int *err);

void stats_publish(struct ns_stats_segment *s);

/* Unmaps the segment; `unlink_it` removes the file too (not in a child
 * that inherited its parent's mapping). */
void stats_destroy(struct ns_stats_segment *s, const char *name, int unlink_it);

/* Seqlock around an update: readers retry while seq is odd or changed. */
void stats_write_begin(struct ns_stats_segment *s);
void stats_write_end(struct ns_stats_segment *s);

#endif
