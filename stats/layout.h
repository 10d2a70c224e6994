/*
 * The stats segment: one per process, a file under /dev/shm written by the
 * shim (stats/writer.c) and read by the numashim tool (stats/reader.c).
 * This header is the layout; it is the only definition of it.
 *
 * Name: /dev/shm/numashim.<pid>.<start>, <start> being the process start
 * time in clock ticks since boot (/proc/PID/stat field 22): a recycled pid
 * gets another name. Created O_CREAT|O_EXCL, mode 0600, sized once, unlinked
 * at exit. A forked child makes its own.
 *
 * Fixed width, little-endian x86-64, no pointers. Readers must check magic,
 * version, header_size and size before trusting anything, copy the segment
 * before parsing it, and read it under the seqlock (seq odd = being
 * written; re-read when seq changed), with a bounded number of retries.
 */
#ifndef NUMASHIM_STATS_LAYOUT_H
#define NUMASHIM_STATS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define NS_STATS_MAGIC 0x314d485341554e4eULL /* "NNUASHM1" little-endian */
#define NS_STATS_VERSION 1
#define NS_STATS_MAX_NODES 64
#define NS_STATS_PREFIX "numashim." /* under /dev/shm */

enum ns_stats_band {
	NS_BAND_SMALL = 0,  /* jemalloc small size classes (<= 14 KiB) */
	NS_BAND_LARGE,      /* jemalloc large size classes */
	NS_BAND_MMAP,       /* anonymous mappings numashim placed */
	NS_BANDS
};

/* Why a mapping was left to the kernel (counts, process-wide). */
enum ns_stats_left {
	NS_STATS_LEFT_FILE = 0, NS_STATS_LEFT_FIXED, NS_STATS_LEFT_HUGETLB,
	NS_STATS_LEFT_STACK, NS_STATS_LEFT_SMALL, NS_STATS_LEFT_PROGRAM_POLICY,
	NS_STATS_LEFT_JVM_NUMA, NS_STATS_LEFT_OFF, NS_STATS_LEFT_REASONS
};

/* Per node. "Requested" = memory numashim meant for this node; "found" =
 * what move_pages found on it when sampling pages meant for it. */
struct ns_stats_node {
	uint64_t live_bytes[NS_BANDS];
	uint64_t live_count[NS_BANDS];
	uint64_t allocs;            /* cumulative, all bands */
	uint64_t frees;
	uint64_t remote_frees;      /* freed by a thread of another node */
	uint64_t interleaved_bytes; /* live bytes of large blocks/mappings here */
	uint64_t sampled_pages;     /* pages meant for this node that were sampled */
	uint64_t found_pages;       /* ... of which on this node */
	uint64_t fallbacks;         /* ... of which on another node */
	uint64_t migrated_pages;    /* reserved: no writer yet (first-touch correction) */
	uint64_t threads;           /* threads bound to this node now */
	uint64_t reserved[9];
};

struct ns_stats_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;       /* sizeof(struct ns_stats_header) */
	uint64_t size;              /* whole segment */
	uint64_t seq;               /* seqlock: odd while the writer updates */
	int32_t pid;
	uint32_t node_count;        /* nodes[] entries in use */
	uint64_t start_time;        /* clock ticks since boot */
	uint64_t updated_ns;        /* CLOCK_REALTIME of the last update */
	uint64_t updates;           /* number of updates */
	uint64_t node_mask;         /* which nodes[] entries are real nodes */
	uint32_t active;            /* 1: per-node arenas; 0: passing through */
	uint32_t fake_nodes;        /* NUMASHIM_FAKE_NODES, 0 = real topology */
	char exe[256];              /* NUL-terminated, maybe cut */
	char comm[16];
	char policy[128];           /* "local nodes 0-1 advisory ..." */
	uint64_t mmap_placed, mmap_placed_bytes;
	uint64_t mmap_left[NS_STATS_LEFT_REASONS];
	uint64_t shm_placed, shm_placed_bytes;
	uint64_t program_mbind, program_set_mempolicy;
	/* Attaches of a shm segment that was attached already (most often
	 * by its creator, in another process): numashim leaves it as it is,
	 * whoever placed it. Taken from the reserved words, which writers
	 * before it left zero: same size and offsets, so no new version (one
	 * of two exceptions to the rule below); an old writer's 0 means "not
	 * counted", its attaches are under mmap_left[PROGRAM_POLICY]. */
	uint64_t shm_attached;
	/* The writer's pid namespace (inode of /proc/self/ns/pid), taken
	 * from the reserved words in the same way; 0 = not recorded. A
	 * process removes a stale segment of another only when this matches
	 * its own namespace, where the other's pid means the same process. */
	uint64_t pid_ns;
	/* The writer's image: field 28 of /proc/self/stat (the stack's start,
	 * new at every exec under address-space randomisation), taken from
	 * the reserved words in the same way; 0 = not recorded. A live pid
	 * with the segment's start time whose field differs has exec'd
	 * another program since: the segment is no longer its. */
	uint64_t image;
	uint64_t reserved[13];
};

struct ns_stats_segment {
	struct ns_stats_header h;
	struct ns_stats_node node[NS_STATS_MAX_NODES];
};

/* The layout is the contract: any change needs a new version. */
_Static_assert(sizeof(struct ns_stats_node) == 24 * 8, "node entry size");
_Static_assert(offsetof(struct ns_stats_header, seq) == 24, "seq offset");
_Static_assert(offsetof(struct ns_stats_header, exe) == 80, "exe offset");
_Static_assert(sizeof(struct ns_stats_header) == 720, "header size");
_Static_assert(offsetof(struct ns_stats_header, shm_attached) == 592,
	       "shm_attached offset (was reserved[0])");
_Static_assert(offsetof(struct ns_stats_header, pid_ns) == 600,
	       "pid_ns offset (was reserved[1])");
_Static_assert(offsetof(struct ns_stats_header, image) == 608,
	       "image offset (was reserved[2])");
_Static_assert(sizeof(struct ns_stats_segment) ==
	       720 + NS_STATS_MAX_NODES * 24 * 8, "segment size");

#endif
