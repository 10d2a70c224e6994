/*
 * Leaves by _exit or _Exit, the exits that run no destructors, for
 * exit-paths.test:
 *
 *   exit_prog _exit|_Exit|quick_exit|signal|thread STATUS
 *   exit_prog vfork|clone-exit|newpid-exit|clone-churn|newpid-churn|
 *             vfork-churn
 *
 * First it allocates until its stats segment appears in /dev/shm (the
 * shim makes it at its first refresh, a second after the start; 3 s at
 * most) and prints "segment NAME" (or "segment none"). Then: _exit(STATUS) or _Exit(STATUS); "signal" calls
 * _exit(STATUS) in a SIGUSR1 handler; "thread" calls it from a second
 * thread while the main thread allocates. "vfork": a vfork child calls
 * _exit(0) in the parent's memory; the parent then prints "after NAME"
 * (its segment must still be there) and returns 0. "clone-exit": the same
 * with a child of a raw clone() (a fork that runs no fork handlers) that
 * calls exit(0), destructors and all; "newpid-exit" the same with the
 * child in a new pid namespace (run it as pid 1 of its own namespace:
 * parent and child then have the same pid). "clone-churn": the raw clone()
 * child allocates and frees for 1.5 s, long enough for the shim's
 * once-a-second refresh, and exits; the parent, allocating nothing more,
 * prints "done" and waits for its stdin to close (its segment, refreshed
 * once by itself, as it was made, must not have been refreshed by the
 * child);
 * "newpid-churn" the same with the child in a new pid namespace.
 * "vfork-churn": after 1.2 s (a refresh is due), a vfork child allocates
 * 256 KiB in its parent's memory and calls _exit; the parent prints
 * "after NAME" and returns (its exit must still remove its segment).
 * quick_exit(STATUS) runs the handlers registered with at_quick_exit.
 *
 *   exit_prog short|idle-thread|exec|exec-plain|pexit|exit-on-create
 *
 * Without waiting for a segment: "short" prints "segment NAME" at once and
 * returns (a process that ends within its first second makes none);
 * "idle-thread" starts a thread that allocates 1 MiB and ends, sleeps
 * 2.5 s without allocating, and prints "segment NAME" (an active shim's
 * helper thread makes it for the idle process). "exec" waits for its
 * segment, prints it, and execs itself as "short" (the new image must not
 * find the old image's segment). "exec-plain" waits for its segment,
 * prints it, and execs "sleep 30" without LD_PRELOAD (a program that
 * writes no segment: the old one must read as stale). "pexit": the main
 * thread calls
 * pthread_exit at once; a second thread allocates until the segment is
 * there, prints it, and waits for its stdin to close. "exit-on-create":
 * a second thread allocates while the main thread watches /dev/shm with
 * inotify and calls _exit(3) as soon as its segment's file appears (the
 * file must not outlive it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static int status;

/* This process's segment in /dev/shm: its name into `name` (NAME_MAX + 1
 * bytes), true if there is one. */
static bool find_segment(char *name)
{
	char prefix[64];
	bool found = false;
	struct dirent *e;
	DIR *d = opendir("/dev/shm");

	snprintf(prefix, sizeof(prefix), "numashim.%d.", (int)getpid());
	while (d && !found && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(name, NAME_MAX + 1, "%s", e->d_name);
			found = true;
		}
	if (d)
		closedir(d);
	return found;
}

static void say_segment(const char *what)
{
	char name[NAME_MAX + 1];

	printf("%s %s\n", what, find_segment(name) ? name : "none");
	fflush(stdout);
}

/* malloc and free for `ms` milliseconds: the shim's activity callback
 * runs about every 64 KiB of it. */
static void churn(int ms)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 1000; i++)
			free(malloc(256));
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

/* Allocates, in slices of 50 ms, until the segment is there (3 s at
 * most): the shim refreshes, and makes it, once a second at most. */
static void await_segment(void)
{
	char name[NAME_MAX + 1];

	for (int i = 0; i < 60 && !find_segment(name); i++)
		churn(50);
}

static void *one_mib(void *unused)
{
	(void)unused;
	for (int i = 0; i < 4096; i++)
		free(malloc(256));
	return NULL;
}

static void *await_and_wait(void *unused)
{
	char c;

	(void)unused;
	await_segment();
	say_segment("segment");
	while (read(0, &c, 1) > 0)
		;
	exit(0);
}

static void *churn_on(void *unused)
{
	(void)unused;
	for (;;)
		churn(1000);
	return NULL;
}

/* _exit(3) as soon as a file named for this process appears in /dev/shm. */
static int exit_on_create(void)
{
	char prefix[64], buf[sizeof(struct inotify_event) + NAME_MAX + 1]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	int fd = inotify_init1(IN_CLOEXEC);
	pthread_t t;

	snprintf(prefix, sizeof(prefix), "numashim.%d.", (int)getpid());
	if (fd < 0 || inotify_add_watch(fd, "/dev/shm", IN_CREATE) < 0 ||
	    pthread_create(&t, NULL, churn_on, NULL))
		return 2;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		for (char *p = buf; n > 0 && p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;

			if (e->len && strncmp(e->name, prefix, strlen(prefix)) == 0) {
				printf("segment %s\n", e->name);
				fflush(stdout);
				_exit(3);
			}
			p += sizeof(*e) + e->len;
		}
		if (n <= 0)
			return 2;
	}
}

static void on_usr1(int sig)
{
	(void)sig;
	_exit(status);
}

static void *exiter(void *unused)
{
	(void)unused;
	_exit(status);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	pthread_t t;

	status = argc > 2 ? atoi(argv[2]) : 0;
	if (strcmp(mode, "short") == 0) {
		say_segment("segment");
		return 0;
	}
	if (strcmp(mode, "pexit") == 0) {
		if (pthread_create(&t, NULL, await_and_wait, NULL))
			return 2;
		pthread_exit(NULL);
	}
	if (strcmp(mode, "exit-on-create") == 0)
		return exit_on_create();
	if (strcmp(mode, "idle-thread") == 0) {
		struct timespec wait = { 2, 500000000L };

		if (pthread_create(&t, NULL, one_mib, NULL) || pthread_join(t, NULL))
			return 2;
		nanosleep(&wait, NULL);
		say_segment("segment");
		return 0;
	}
	if (!getenv("NUMASHIM_STATS") || strcmp(getenv("NUMASHIM_STATS"), "off"))
		await_segment();
	say_segment("segment");
	if (strcmp(mode, "exec") == 0) {
		execl("/proc/self/exe", "exit_prog", "short", (char *)NULL);
		return 2;
	}
	if (strcmp(mode, "exec-plain") == 0) {
		unsetenv("LD_PRELOAD");
		execlp("sleep", "sleep", "30", (char *)NULL);
		return 2;
	}
	if (strcmp(mode, "_exit") == 0)
		_exit(status);
	if (strcmp(mode, "_Exit") == 0)
		_Exit(status);
	if (strcmp(mode, "quick_exit") == 0)
		quick_exit(status);
	if (strcmp(mode, "signal") == 0) {
		signal(SIGUSR1, on_usr1);
		raise(SIGUSR1);
		return 2;
	}
	if (strcmp(mode, "thread") == 0) {
		if (pthread_create(&t, NULL, exiter, NULL))
			return 2;
		for (;;)
			free(malloc(64));
	}
	if (strcmp(mode, "vfork-churn") == 0) {
		struct timespec wait = { 1, 200000000L };
		int st;
		pid_t pid;

		nanosleep(&wait, NULL);
		pid = vfork();
		if (pid == 0) {
			for (int i = 0; i < 1000; i++)
				free(malloc(256));
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
			return 2;
		say_segment("after");
		return 0;
	}
	if (strcmp(mode, "vfork") == 0 || strcmp(mode, "clone-exit") == 0 ||
	    strcmp(mode, "newpid-exit") == 0 || strcmp(mode, "clone-churn") == 0 ||
	    strcmp(mode, "newpid-churn") == 0) {
		bool churns = strstr(mode, "churn") != NULL;
		unsigned long flags = SIGCHLD;
		int st;
		pid_t pid;

		if (strncmp(mode, "newpid", 6) == 0)
			flags |= CLONE_NEWPID;
		pid = strcmp(mode, "vfork") == 0 ? vfork() :
		      (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
		if (pid == 0 && churns)
			churn(1500);
		if (pid == 0 && strcmp(mode, "vfork") != 0)
			exit(0);
		if (pid == 0)
			_exit(0);
		if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
			return 2;
		if (churns) {
			char c;

			/* No allocation from here on: nothing of the parent's
			 * own may refresh its segment. */
			if (write(1, "done\n", 5) != 5)
				return 2;
			while (read(0, &c, 1) > 0)
				;
			return 0;
		}
		say_segment("after");
		return 0;
	}
	return 2;
}
