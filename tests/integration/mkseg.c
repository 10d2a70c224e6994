/*
 * mkseg — writes stats segments for the numashim tool's tests, valid and
 * hostile, from stats/layout.h.
 *
 *   mkseg KIND PATH [PID]
 *
 * PID (default: a pid that is not running) goes into the header; its start
 * time is read from /proc when the process exists (0 otherwise). A PATH
 * ending in '/' is a directory: the file is named numashim.<pid>.<start>
 * there, as the shim names it. KIND:
 *   valid         known numbers on 2 nodes (see fill_valid; the tests check
 *                 them in every output format)
 *   truncated     half a segment          oversized   a segment + 4 KiB
 *   magic         wrong magic             version     version 2
 *   otherns       valid, written in another pid namespace
 *   header-size   header_size 700         size-field  size field wrong
 *   garbage       a segment's worth of pseudo-random bytes
 *   nodes1000     node_count 1000         nodemask    mask beyond node_count
 *   unterminated  comm without a NUL      zero-pid    pid 0 in the header
 *   odd           seq odd (a writer that died mid-update)
 *   stuck         seq odd, and this process stays alive holding it (a
 *                 writer stuck mid-update) until killed or 60 s pass
 *   flapping      seq advanced without pause for 10 s (torn reads)
 *   wide          valid, with counters of 16 to 20 digits whose sums
 *                 over the nodes (or bands) exceed UINT64_MAX (see
 *                 check_tool_output.py's WIDE)
 *   rounding      valid on 3 nodes whose remote shares sit just off the
 *                 rating's edges: 4.9995 %, 20.004 %, 9.9995 % (shown
 *                 5.00, 20.00, 10.00; check_tool_output.py's ROUNDING)
 *   wrap          valid, but node 0 sampled 2^64-1 pages and node 1 2, both
 *                 fallen back: a plain sum wraps to 1 page, 2 fallen back
 *   never         valid, never updated (updated_ns 0, updates 0)
 * Prints the file name it wrote on stdout (stuck/flapping: before waiting).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stats/layout.h"

static unsigned long long proc_start(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long long v = 0;
	int field = 2;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	for (p = strtok(p + 1, " "); p; p = strtok(NULL, " "))
		if (++field == 22)
			return strtoull(p, NULL, 10);
	return v;
}

static int free_pid(void)
{
	char path[64];

	for (int pid = 4190000; pid > 300000; pid -= 7919) {
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (access(path, F_OK) != 0)
			return pid;
	}
	return 4194301;
}

/* Our pid namespace, as the shim records it (0 if unknown). */
static unsigned long long pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* Known numbers: node 0 at 7 % remote pages (monitor), node 1 at 25 %
 * (critical), 10 % in total (investigate). */
static void fill_valid(struct ns_stats_segment *s, int pid)
{
	static const char comm[] = "we\"ird\\n\n";
	static const char exe[] = "/opt/\xc3\xbc tf8 \"app\"\xff/bin";
	struct ns_stats_node *n0 = &s->node[0], *n1 = &s->node[1];

	s->h.magic = NS_STATS_MAGIC;
	s->h.version = NS_STATS_VERSION;
	s->h.header_size = sizeof(struct ns_stats_header);
	s->h.size = sizeof(struct ns_stats_segment);
	s->h.seq = 42;
	s->h.pid = pid;
	s->h.node_count = 2;
	s->h.start_time = proc_start(pid);
	s->h.updated_ns = (uint64_t)time(NULL) * 1000000000ULL;
	s->h.updates = 17;
	s->h.node_mask = 3;
	s->h.active = 1;
	memcpy(s->h.exe, exe, sizeof(exe));
	memcpy(s->h.comm, comm, sizeof(comm));
	strcpy(s->h.policy, "local nodes 0-1 advisory");
	s->h.mmap_placed = 2;
	s->h.mmap_placed_bytes = 128ULL << 20;
	s->h.mmap_left[NS_STATS_LEFT_FILE] = 5;
	s->h.mmap_left[NS_STATS_LEFT_SMALL] = 11;
	s->h.shm_placed = 1;
	s->h.shm_placed_bytes = 8ULL << 20;
	s->h.shm_attached = 4;
	s->h.pid_ns = pid_ns();
	s->h.program_mbind = 3;
	s->h.program_set_mempolicy = 1;

	n0->live_bytes[NS_BAND_SMALL] = 10ULL << 20;
	n0->live_bytes[NS_BAND_LARGE] = 3ULL << 20;
	n0->live_bytes[NS_BAND_MMAP] = 64ULL << 20;
	n0->live_count[NS_BAND_SMALL] = 1000;
	n0->live_count[NS_BAND_LARGE] = 3;
	n0->live_count[NS_BAND_MMAP] = 1;
	n0->allocs = 5000;
	n0->frees = 4000;
	n0->remote_frees = 400;
	n0->interleaved_bytes = 32ULL << 20;
	n0->sampled_pages = 1000;
	n0->found_pages = 930;
	n0->fallbacks = 70;
	n0->migrated_pages = 5;
	n0->threads = 3;

	n1->live_bytes[NS_BAND_SMALL] = 1ULL << 20;
	n1->live_bytes[NS_BAND_LARGE] = 0;
	n1->live_bytes[NS_BAND_MMAP] = 64ULL << 20;
	n1->live_count[NS_BAND_SMALL] = 100;
	n1->live_count[NS_BAND_MMAP] = 1;
	n1->allocs = 700;
	n1->frees = 600;
	n1->remote_frees = 150;
	n1->interleaved_bytes = 32ULL << 20;
	n1->sampled_pages = 200;
	n1->found_pages = 150;
	n1->fallbacks = 50;
	n1->migrated_pages = 0;
	n1->threads = 1;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || fchmod(fd, 0600) || write(fd, buf, len) != (ssize_t)len) {
		fprintf(stderr, "mkseg: %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

/* Keep seq odd (stuck) or moving (flapping) through a shared mapping. */
static int hold(const char *path, int flapping)
{
	int fd = open(path, O_RDWR);
	struct ns_stats_segment *m;
	time_t end = time(NULL) + (flapping ? 10 : 60);

	if (fd < 0)
		return 1;
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	m->h.seq |= 1;
	printf("%s\n", path);
	fflush(stdout);
	while (time(NULL) < end) {
		if (flapping) {
			for (int i = 0; i < 100000; i++) {
				__atomic_store_n(&m->h.seq, m->h.seq + 1, __ATOMIC_RELEASE);
				m->node[0].allocs++;
			}
		} else {
			sleep(1);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct ns_stats_segment s;
	const char *kind, *path;
	static char named[4096];
	size_t len = sizeof(s);
	int pid;

	if (argc < 3) {
		fprintf(stderr, "usage: mkseg KIND PATH [PID]\n");
		return 2;
	}
	kind = argv[1];
	path = argv[2];
	pid = argc > 3 ? atoi(argv[3]) : free_pid();
	fill_valid(&s, pid);
	if (path[0] && path[strlen(path) - 1] == '/') {
		snprintf(named, sizeof(named), "%s%s%d.%llu", path, NS_STATS_PREFIX,
			 pid, (unsigned long long)s.h.start_time);
		path = named;
	}
	if (strcmp(kind, "valid") == 0 || strcmp(kind, "stuck") == 0 ||
	    strcmp(kind, "flapping") == 0) {
		/* as is */
	} else if (strcmp(kind, "truncated") == 0) {
		len /= 2;
	} else if (strcmp(kind, "oversized") == 0) {
		static char big[sizeof(s) + 4096];

		memcpy(big, &s, sizeof(s));
		if (write_file(path, big, sizeof(big)))
			return 1;
		printf("%s\n", path);
		return 0;
	} else if (strcmp(kind, "magic") == 0) {
		s.h.magic ^= 0xff;
	} else if (strcmp(kind, "otherns") == 0) {
		s.h.pid_ns = 1; /* valid, from another pid namespace */
	} else if (strcmp(kind, "version") == 0) {
		s.h.version = 2;
	} else if (strcmp(kind, "header-size") == 0) {
		s.h.header_size = 700;
	} else if (strcmp(kind, "size-field") == 0) {
		s.h.size = 1ULL << 40;
	} else if (strcmp(kind, "garbage") == 0) {
		unsigned char *b = (unsigned char *)&s;
		uint32_t x = 2463534242u;

		for (size_t i = 0; i < sizeof(s); i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			b[i] = (unsigned char)x;
		}
	} else if (strcmp(kind, "nodes1000") == 0) {
		s.h.node_count = 1000;
	} else if (strcmp(kind, "nodemask") == 0) {
		s.h.node_mask = 1ULL << 40;
	} else if (strcmp(kind, "unterminated") == 0) {
		memset(s.h.comm, 'A', sizeof(s.h.comm));
	} else if (strcmp(kind, "zero-pid") == 0) {
		s.h.pid = 0;
	} else if (strcmp(kind, "odd") == 0) {
		s.h.seq = 43;
	} else if (strcmp(kind, "wide") == 0) {
		s.node[0].allocs = UINT64_MAX;
		s.node[1].allocs = 1;
		s.node[0].frees = 1;
		s.node[1].frees = 9999999999999999ULL;     /* 16 digits */
		s.node[0].live_bytes[NS_BAND_SMALL] = UINT64_MAX;
		s.node[0].live_count[NS_BAND_SMALL] = UINT64_MAX - 1;
	} else if (strcmp(kind, "rounding") == 0) {
		static const uint64_t sampled[3] = { 200000, 25000, 200000 };
		static const uint64_t fallbacks[3] = { 9999, 5001, 19999 };

		s.h.node_count = 3;
		s.h.node_mask = 7;
		for (int k = 0; k < 3; k++) {
			s.node[k].sampled_pages = sampled[k];
			s.node[k].fallbacks = fallbacks[k];
			s.node[k].found_pages = sampled[k] - fallbacks[k];
		}
	} else if (strcmp(kind, "wrap") == 0) {
		s.node[0].sampled_pages = UINT64_MAX;
		s.node[0].found_pages = UINT64_MAX;
		s.node[0].fallbacks = 0;
		s.node[1].sampled_pages = 2;
		s.node[1].found_pages = 0;
		s.node[1].fallbacks = 2;
	} else if (strcmp(kind, "never") == 0) {
		s.h.updated_ns = 0;
		s.h.updates = 0;
	} else {
		fprintf(stderr, "mkseg: unknown kind %s\n", kind);
		return 2;
	}
	if (write_file(path, &s, len))
		return 1;
	if (strcmp(kind, "stuck") == 0 || strcmp(kind, "flapping") == 0)
		return hold(path, kind[0] == 'f');
	printf("%s\n", path);
	return 0;
}
