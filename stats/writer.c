#include "stats/writer.h"
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm/"


void stats_name(char name[STATS_NAME_MAX], pid_t pid, uint64_t start)
{
	strcpy(name, NS_STATS_PREFIX);
	policy_format_u64((uint64_t)pid, name + strlen(name));
	strcat(name, ".");
	policy_format_u64(start, name + strlen(name));
}

/* SHM_DIR + name into path. */
static void shm_path(const char *name, char path[STATS_NAME_MAX + 16])
{
	strcpy(path, SHM_DIR);
	strcat(path, name);
}

/* 0600 whatever the umask: the reader trusts no other mode (a umask of
 * 0277 made a 0400 segment that numashim stat refused; found by a
 * review). */
static int open_path(const char *name, char path[STATS_NAME_MAX + 16])
{
	int fd;

	shm_path(name, path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && fchmod(fd, 0600) != 0) {
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

struct ns_stats_segment *stats_create(pid_t pid, uint64_t start_time,
				      char name[STATS_NAME_MAX], int *err)
{
	char path[STATS_NAME_MAX + 16], fresh[STATS_NAME_MAX];
	struct ns_stats_segment *s;
	int saved = errno, fd, rc;

	/* Made aside, then copied whole: `name` may already hold this very
	 * name, read meanwhile by an _exit in another thread, which must
	 * never see it cut short. */
	stats_name(fresh, pid, start_time);
	strcpy(name, fresh);
	fd = open_path(name, path);
	if (fd < 0 && errno == EEXIST) {
		/* Ours from before an exec (same pid, same start time). */
		unlink(path);
		fd = open_path(name, path);
	}
	if (fd < 0)
		goto fail;
	/* Its blocks, not only its size: a sparse file's first write through
	 * the mapping raises SIGBUS when tmpfs has no room (a full /dev/shm:
	 * Docker gives 64 MiB), in the program numashim is preloaded into. */
	if ((rc = posix_fallocate(fd, 0, sizeof(*s))) != 0) {
		close(fd);
		unlink(path);
		errno = rc;
		goto fail;
	}
	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (s == MAP_FAILED) {
		unlink(path);
		goto fail;
	}
	/* No magic yet: stats_publish writes it once the writer has filled
	 * the rest of the header in. */
	s->h.version = NS_STATS_VERSION;
	s->h.header_size = sizeof(s->h);
	s->h.size = sizeof(*s);
	s->h.pid = pid;
	s->h.start_time = start_time;
	errno = saved;
	return s;
fail:
	*err = -errno;
	errno = saved;
	return NULL;
}

/* The magic last, with a release store: a reader takes a zero magic for a
 * segment still being created and waits, where one that saw the magic
 * before the rest called the segment corrupt ("pid 0") or showed it without
 * its name (found by a review). */
void stats_publish(struct ns_stats_segment *s)
{
	__atomic_store_n(&s->h.magic, NS_STATS_MAGIC, __ATOMIC_RELEASE);
}

int stats_remove_leftover(const char *name)
{
	char path[STATS_NAME_MAX + 16];
	int saved = errno, rc = 0;

	shm_path(name, path);
	if (access(path, F_OK) == 0)
		rc = unlink(path) == 0;
	errno = saved;
	return rc;
}

void stats_destroy(struct ns_stats_segment *s, const char *name, int unlink_it)
{
	char path[STATS_NAME_MAX + 16];
	int saved = errno;

	if (s)
		munmap(s, sizeof(*s));
	if (unlink_it && name[0]) {
		shm_path(name, path);
		unlink(path);
	}
	errno = saved;
}

void stats_write_begin(struct ns_stats_segment *s)
{
	__atomic_store_n(&s->h.seq, s->h.seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

void stats_write_end(struct ns_stats_segment *s)
{
	__atomic_store_n(&s->h.seq, s->h.seq + 1, __ATOMIC_RELEASE);
}
