/*
 * What /proc says about the processes under numashim (see reader.h): which
 * processes map the library, and where their placed pages sit
 * (numa_maps). Kept apart from the segment reader, which trusts nothing
 * it reads either, but reads only /dev/shm.
 */
#include "stats/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ processes */

int stats_maps_have_shim(const char *root, int pid)
{
	char path[4096], line[4096];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "%s/proc/%d/maps", root, pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	/* A line cut by the buffer's size goes on in the next read: its tail
	 * holds the path, and the tail is what is compared. The library's
	 * name exactly, perhaps replaced since it was mapped ("(deleted)"). */
	while (!found && fgets(line, sizeof(line), f)) {
		char *slash = strrchr(line, '/');

		found = slash && (strcmp(slash + 1, "libnumashim.so\n") == 0 ||
				  strcmp(slash + 1, "libnumashim.so (deleted)\n") == 0);
	}
	fclose(f);
	return found;
}

static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

int stats_shim_pids(const char *root, int **out, size_t *n)
{
	char path[4096];
	struct dirent *de;
	size_t cap = 0;
	int *v = NULL;
	DIR *d;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/proc", root);
	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid > INT_MAX || (!root[0] && pid == getpid()) ||
		    stats_maps_have_shim(root, (int)pid) != 1)
			continue;
		if (*n == cap) {
			int *w = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (w == NULL) {
				closedir(d);
				free(v);
				*n = 0;
				return -ENOMEM;
			}
			v = w;
		}
		v[(*n)++] = (int)pid;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_int);
	*out = v;
	return 0;
}

/* ------------------------------------------------------------ resident */

#define NUMA_MAPS_MAX_LINES (64L << 20) /* mappings (vm.max_map_count: 65530 by default) */
#define NUMA_MAPS_LINE_MAX (64 << 10)   /* a line: a path of PATH_MAX and counts */

/* One numa_maps line's pages per node, added to bytes. */
static void add_numa_line(char *line, bool placed_only,
			  uint64_t bytes[NS_STATS_MAX_NODES])
{
	uint64_t pages[NS_STATS_MAX_NODES] = { 0 }, kb = 4;
	char *save = NULL, *tok = strtok_r(line, " \n", &save);
	bool placed;

	/* address, then the policy */
	tok = tok ? strtok_r(NULL, " \n", &save) : NULL;
	if (tok == NULL)
		return;
	/* Every policy but the default ones: the kernel writes a mode's
	 * flags after it ("bind=static:0", "prefer=relative:1") and two
	 * modes in two words ("weighted interleave:0-1", "prefer (many):0-1"),
	 * which matching "prefer:", "bind:" and "interleave" missed (found
	 * by a review). */
	placed = strcmp(tok, "default") != 0 && strcmp(tok, "local") != 0;
	if (placed_only && !placed)
		return;
	while ((tok = strtok_r(NULL, " \n", &save)) != NULL) {
		unsigned node;
		unsigned long long v;

		if (sscanf(tok, "N%u=%llu", &node, &v) == 2 &&
		    node < NS_STATS_MAX_NODES)
			pages[node] += v;
		else if (sscanf(tok, "kernelpagesize_kB=%llu", &v) == 1)
			kb = v;
	}
	for (int n = 0; n < NS_STATS_MAX_NODES; n++)
		bytes[n] += pages[n] * kb * 1024;
}

int stats_numa_maps(const char *path, bool placed_only,
		    uint64_t bytes[NS_STATS_MAX_NODES])
{
	char *line;
	struct stat st;
	long lines = 0;
	int fd, e = 0;
	FILE *f;

	memset(bytes, 0, NS_STATS_MAX_NODES * sizeof(bytes[0]));
	/* A FIFO or a device where numa_maps should be (doctor --root reads
	 * made-up trees) must not hang or feed us for ever. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -EINVAL;
	}
	line = malloc(NUMA_MAPS_LINE_MAX);
	if (line == NULL) {
		fclose(f);
		return -ENOMEM;
	}
	/* A line as long as a file mapping's path (PATH_MAX) makes is read
	 * whole, its counts after the path included; a longer one is not
	 * numa_maps, and memory stays bounded. */
	while (e == 0 && fgets(line, NUMA_MAPS_LINE_MAX, f)) {
		if (++lines > NUMA_MAPS_MAX_LINES ||
		    (strchr(line, '\n') == NULL && !feof(f)))
			e = -EFBIG;
		else
			add_numa_line(line, placed_only, bytes);
	}
	if (e == 0 && ferror(f))
		e = -EIO; /* a read that failed part way: no figures */
	free(line);
	fclose(f);
	return e;
}

int stats_resident(int pid, uint64_t bytes[NS_STATS_MAX_NODES])
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/numa_maps", pid);
	return stats_numa_maps(path, true, bytes);
}
