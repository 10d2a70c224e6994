/*
 * stats reader — finds and reads the stats segments the shim writes
 * (stats/layout.h), for the numashim tool.
 *
 * A segment is untrusted input: any user can leave a file named like one in
 * /dev/shm, and a writer can die in the middle of an update. The reader
 * checks the file (regular, not a symlink, one link, mode 0600, the right
 * owner, the exact size), copies it with pread (never mmap: a file truncated
 * under a mapping would kill the reader with SIGBUS), reads it under the
 * seqlock with a bounded number of retries, and validates the copy (magic,
 * version, header_size, size, node_count, NUL-terminated strings) before
 * anything else looks at it.
 *
 * Conventions: functions return 0 on success and -errno on failure; on
 * failure `err` holds one line for people, "PATH: what is wrong".
 */
#ifndef NUMASHIM_STATS_READER_H
#define NUMASHIM_STATS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats/layout.h"
#include "stats/stale.h"

#define STATS_DIR "/dev/shm"
#define STATS_ERR_LEN 512
#define STATS_READ_TRIES 100   /* seqlock attempts before "busy/torn" */

/* One entry of the stats directory whose name starts with NS_STATS_PREFIX. */
struct stats_entry {
	char name[256];
	bool name_ok;         /* "numashim.<pid>.<start>" */
	int pid;
	uint64_t start;
	enum stats_state state;
};

/* A segment that has been read and validated. */
struct stats_snapshot {
	char path[4096];
	enum stats_state state;
	struct ns_stats_segment seg;
	/* Resident bytes per node of the memory numashim placed (from
	 * /proc/PID/numa_maps; see stats_resident); valid when resident_ok. */
	bool resident_ok;
	uint64_t resident[NS_STATS_MAX_NODES];
};

/*
 * Resident bytes per node of process `pid`'s memory under an explicit
 * NUMA policy (numa_maps: any but "default" and "local"): numashim's heap
 * extents and the mappings it placed, plus any range the program binds
 * itself. This is what `numastat -p` counts for the heap, page for page.
 * A process that passes through (no policies) has none. 0 or -errno.
 */
int stats_resident(int pid, uint64_t bytes[NS_STATS_MAX_NODES]);

/* The same from a numa_maps file at `path`, of every mapping when
 * `placed_only` is false (doctor's whole-process view). 0 or -errno. */
int stats_numa_maps(const char *path, bool placed_only,
		    uint64_t bytes[NS_STATS_MAX_NODES]);

const char *stats_state_name(enum stats_state s);

/* Whether the process a segment's file name (the last part of `path`:
 * numashim.<pid>.<start>) names is alive. */
bool stats_names_live(const char *path);

/*
 * All entries of `dir` (STATS_DIR when NULL) whose name starts with
 * NS_STATS_PREFIX, sorted by pid then start. *out is malloc'd (free it).
 */
int stats_list(const char *dir, struct stats_entry **out, size_t *n,
	       char *err, size_t errlen);

/*
 * Read and validate one segment file into snap. With `for_removal` the
 * seqlock is not waited for (a writer that died mid-update leaves seq odd
 * for ever) and the owner need only be ours (or we are root).
 */
int stats_read_path(const char *path, bool for_removal,
		    struct stats_snapshot *snap, char *err, size_t errlen);

/*
 * Whether process `pid` has numashim mapped (a libnumashim.so* in
 * ROOT/proc/PID/maps; ROOT "" for the real /proc): 1 or 0, or -errno when
 * the maps cannot be read (another user's process). A process under
 * numashim makes its segment only at its first refresh (shim/stats.c).
 */
int stats_maps_have_shim(const char *root, int pid);

/*
 * The processes under numashim in ROOT/proc (ROOT "" for the real one):
 * those whose maps this process may read and that have numashim mapped
 * (stats_maps_have_shim), sorted by pid; not the caller itself (a tool
 * run under the shim). *out is malloc'd (free it).
 * 0, or -errno when ROOT/proc cannot be listed. It reads every process's
 * maps: about 1 ms for 70 processes here, more for big ones.
 */
int stats_shim_pids(const char *root, int **out, size_t *n);

/*
 * The segment of process `pid` in `dir` (STATS_DIR when NULL): the one
 * whose start time matches the live process, else the newest stale one.
 * -EAGAIN when a live process under numashim has none yet.
 */
int stats_read_pid(const char *dir, int pid, struct stats_snapshot *snap,
		   char *err, size_t errlen);

/* Validate the contents of a copied segment (no I/O). */
int stats_validate(const struct ns_stats_segment *s, char *err, size_t errlen);

/* The node entries to show: node_mask within node_count, or all of the
 * first node_count entries when the mask is empty. */
uint64_t stats_nodes_shown(const struct ns_stats_segment *s);

#endif
