/*
 * errno_churn SECS: malloc and free blocks of a few sizes for SECS seconds
 * (long enough for the shim's statistics to refresh inside them), each
 * call made with errno set to a value no allocator sets. malloc and free
 * must leave errno alone when they succeed (free always: POSIX 2024,
 * glibc 2.33). Prints the calls made; exit 1 when one changed errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	enum { SLOTS = 256 };
	static void *slot[SLOTS];
	unsigned long calls = 0, changed_malloc = 0, changed_free = 0;
	int last = 0;
	double end;

	if (argc != 2 || atof(argv[1]) <= 0) {
		fprintf(stderr, "usage: %s SECS\n", argv[0]);
		return 2;
	}
	end = now() + atof(argv[1]);
	for (unsigned i = 0; now() < end; i++) {
		unsigned k = (i * 2654435761u) % SLOTS;

		errno = EDOM;
		free(slot[k]);
		if (errno != EDOM) {
			changed_free++;
			last = errno;
		}
		errno = EDOM;
		slot[k] = malloc(16 + (i % 7) * 1000);
		if (slot[k] == NULL) {
			perror("malloc");
			return 2;
		}
		if (errno != EDOM) {
			changed_malloc++;
			last = errno;
		}
		calls += 2;
	}
	printf("calls %lu: malloc changed errno %lu times, free %lu times%s%s\n", calls,
	       changed_malloc, changed_free, last ? "; last: " : "", last ? strerror(last) : "");
	return changed_malloc || changed_free;
}
