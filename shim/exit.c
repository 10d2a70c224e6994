/*
 * _exit and _Exit: the ways out of a process that run no destructors, so
 * the stats segment's file would stay in /dev/shm (shim/stats.c removes it
 * in a destructor). dash leaves every shell by _exit, Python's os._exit
 * and the children of many forking servers do too: before these, each
 * such process left a 13 KiB file on tmpfs until a helper thread or
 * "numashim stat --gc" found it.
 *
 * Removing the file is all they add to what glibc's _exit does, the
 * exit_group system call: they may run in a signal handler or in a vfork
 * child (see ns_stats_exit_now). exit() and glibc's own internal calls of
 * _exit (posix_spawn's child, abort paths) do not come through here;
 * exit() has run the destructor by then.
 */
#include "shim/shim.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static __attribute__((noreturn)) void exit_now(int status)
{
	ns_stats_exit_now();
	for (;;)
		syscall(SYS_exit_group, status);
}

NS_EXPORT void _exit(int status)
{
	exit_now(status);
}

NS_EXPORT void _Exit(int status)
{
	exit_now(status);
}
