/*
 * Segment names (numashim.<pid>.<start>) and whether the process that
 * wrote a segment is still there; removing the segments of those gone.
 */
#ifndef NUMASHIM_STATS_STALE_H
#define NUMASHIM_STATS_STALE_H

#include "stats/layout.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What became of the process a segment was written by. */
enum stats_state {
	STATS_LIVE = 0,   /* pid alive with the start time in the name */
	STATS_DEAD,       /* no such pid */
	STATS_REUSED,     /* pid alive, but another process (start differs) */
	STATS_EXECED,     /* the same process, but it has exec'd since */
};

/* Parse "numashim.<pid>.<start>"; 0 or -EINVAL. */
int stats_parse_name(const char *name, int *pid, uint64_t *start);

/* Read a small /proc or /sys file into buf (NUL-terminated, cut to
 * len - 1; a FIFO does not block); 0 or -errno. */
int stats_read_small(const char *path, char *buf, size_t len);

/* Field 22 (start time, clock ticks since boot) and field 3 (state: 'Z'
 * for a zombie) of /proc/PID/stat, pid 0 meaning the caller (/proc/self);
 * -ESRCH when it cannot be read, -EIO when it does not parse. */
int stats_proc_stat(int pid, uint64_t *start, char *state);

/* The same, and field 28 (the stack's start: the image; 0 where the
 * kernel hides it, from a process we may not trace) into *image. */
int stats_proc_image(int pid, uint64_t *start, char *state, uint64_t *image);

/* The start time of a live process (/proc/PID/stat field 22, clock ticks
 * since boot; pid 0: the caller, from /proc/self); -ESRCH when there is no
 * such process. */
int stats_proc_start(int pid, uint64_t *start);

/* LIVE, DEAD or REUSED for the process a segment names. */
enum stats_state stats_state_of(int pid, uint64_t start);

/* The same, and EXECED for a live one whose image differs from the
 * segment's `image` (header field; 0, here or in /proc: not compared). */
enum stats_state stats_state_image(int pid, uint64_t start, uint64_t image);

/* The calling process's pid namespace (inode of /proc/self/ns/pid), or 0. */
uint64_t stats_pid_ns(void);

/* Removes our own segments in `dir` written in our pid namespace whose
 * pid no process has (see stale.c), never `self`'s; the number removed,
 * or -errno. */
int stats_remove_stale(const char *dir, pid_t self);

#endif
