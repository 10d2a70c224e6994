/* malloc and free are no cancellation points (POSIX lists neither): a
 * thread with a deferred cancel pending that holds a mutex and allocates,
 * with no cancellation point of its own, must get to unlock it and be
 * cancelled at its own pthread_testcancel.
 *
 *   cancel SECONDS   the thread allocates and frees for SECONDS (more than
 *                    the shim's 1 s to its first statistics refresh, which
 *                    then falls in this thread's allocations while main
 *                    waits in pthread_join) with a cancel pending all the
 *                    time; exit 1 if it ended inside the loop.
 */
#include "tests/integration/check.h"

#include <pthread.h>

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static volatile int unlocked;
static double seconds;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	double start = now();
	unsigned long rounds = 0;

	(void)arg;
	pthread_mutex_lock(&held);
	while (now() - start < seconds) {
		size_t n = 1000 + rounds++ % 8000;
		char *p = malloc(n);

		if (p == NULL)
			break;
		memset(p, 0x5a, n);
		free(p);
	}
	unlocked = 1;
	pthread_mutex_unlock(&held);
	pthread_testcancel();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	void *ret = NULL;
	int busy;

	seconds = argc > 1 ? atof(argv[1]) : 2.0;
	CHECK(pthread_create(&t, NULL, worker, NULL) == 0,
	      "pthread_create: expected 0");
	CHECK(pthread_cancel(t) == 0, "pthread_cancel: expected 0");
	CHECK(pthread_join(t, &ret) == 0, "pthread_join: expected 0");
	CHECK(ret == PTHREAD_CANCELED, "the thread's end: expected "
	      "PTHREAD_CANCELED, got %p", ret);
	busy = pthread_mutex_trylock(&held);
	CHECK(unlocked && busy == 0, "the thread was cancelled inside "
	      "malloc or free, before its own pthread_testcancel: expected "
	      "the mutex it held unlocked, got %s",
	      busy ? "locked for good" : "unlocked");
	if (check_failures == 0)
		printf("cancelled at its own cancellation point after %.1f s of "
		       "allocations\n", seconds);
	return check_failures ? 1 : 0;
}
