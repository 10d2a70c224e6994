/*
 * churn_rss: threads that allocate a batch of equal blocks, write them and
 * free them all, round after round; the process's peak RSS must stay near
 * what is live at once. Under numashim (whose jemalloc keeps freed runs of
 * coalesced pages until they decay) such a churn of 20,000-byte blocks
 * mapped fresh memory every round: 2.4 GB of peak RSS for 20 MB live.
 *
 *   churn_rss THREADS BLOCKS SIZE ROUNDS
 * Prints the peak RSS and the live size; exits 1 when the peak is above
 * 3 times what is live plus 32 MiB (the program, the allocator's
 * metadata, pages that wait to decay), 2 when it could not run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t blocks, size, rounds;

static void *churn(void *unused)
{
	char **p = malloc(blocks * sizeof(*p));

	if (p == NULL)
		exit(2);
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < blocks; i++) {
			p[i] = malloc(size);
			if (p[i] == NULL)
				exit(2);
			memset(p[i], (int)r, size);
		}
		for (size_t i = 0; i < blocks; i++)
			free(p[i]);
	}
	free(p);
	return unused;
}

/* VmHWM of this process, in KiB; 0 if unknown. */
static long peak_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

int main(int argc, char **argv)
{
	pthread_t t[64];
	int threads;
	long peak, live, limit;

	if (argc != 5)
		return 2;
	threads = atoi(argv[1]);
	blocks = strtoul(argv[2], NULL, 0);
	size = strtoul(argv[3], NULL, 0);
	rounds = strtoul(argv[4], NULL, 0);
	if (threads < 1 || threads > 64 || blocks == 0 || size == 0)
		return 2;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, churn, NULL))
			return 2;
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	peak = peak_kib();
	live = (long)(threads * blocks * size / 1024);
	limit = 3 * live + 32 * 1024;
	printf("peak RSS %ld KiB, live %ld KiB, limit %ld KiB\n", peak, live, limit);
	return peak == 0 ? 2 : peak > limit ? 1 : 0;
}
