/* A small allocation-heavy program with a known answer, for running under
 * the shim with odd settings: builds, sorts and hashes strings, grows and
 * shrinks arrays, and does the same in 4 threads.  Prints one line per step;
 * the output does not depend on the allocator. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t strings_hash(unsigned seed, int n)
{
	char **v = malloc(sizeof(*v) * (size_t)n);
	uint64_t h = 1469598103934665603ull, x = seed * 2654435761u + 1;

	if (v == NULL)
		return 0;
	for (int i = 0; i < n; i++) {
		char buf[64];
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		int len = snprintf(buf, sizeof buf, "%llx-%d", (unsigned long long)(x >> 20), i % 97);
		v[i] = malloc((size_t)len + 1 + (size_t)(i % 300));
		if (v[i] == NULL)
			return 0;
		memcpy(v[i], buf, (size_t)len + 1);
	}
	qsort(v, (size_t)n, sizeof(*v), cmp);
	for (int i = 0; i < n; i++) {
		for (const char *c = v[i]; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
		v[i] = realloc(v[i], strlen(v[i]) + 1);
		free(v[i]);
	}
	free(v);
	return h;
}

static void *thread_main(void *arg)
{
	uint64_t *out = arg;
	*out = strings_hash((unsigned)*out, 20000);
	return NULL;
}

int main(void)
{
	pthread_t th[4];
	uint64_t res[4];
	size_t cap = 1, len = 0;
	unsigned *a = malloc(sizeof(*a));
	uint64_t sum = 0;

	printf("strings: %016llx\n", (unsigned long long)strings_hash(7, 50000));
	for (unsigned i = 0; i < 1000000; i++) {
		if (len == cap) {
			cap *= 2;
			a = realloc(a, cap * sizeof(*a));
			if (a == NULL)
				return 3;
		}
		a[len++] = i * 7u;
	}
	for (size_t i = 0; i < len; i++)
		sum += a[i];
	free(a);
	printf("array: %zu elements, sum %llu\n", len, (unsigned long long)sum);
	for (int t = 0; t < 4; t++) {
		res[t] = (uint64_t)t + 1;
		if (pthread_create(&th[t], NULL, thread_main, &res[t]))
			return 4;
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		printf("thread %d: %016llx\n", t, (unsigned long long)res[t]);
	}
	return 0;
}
