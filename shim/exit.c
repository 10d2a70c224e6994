/*
 * _exit, _Exit and quick_exit: the ways out of a process that run no
 * destructors, so the stats segment's file would stay in /dev/shm
 * (shim/stats.c removes it in a destructor). dash leaves every shell by
 * _exit, Python's os._exit and the children of many forking servers do
 * too: before these, each such process left a 13 KiB file on tmpfs until a
 * helper thread or "numashim stat --gc" found it.
 *
 * _exit and _Exit remove the file, then do what glibc's _exit does:
 * exit_group, then exit, then a trap, should a seccomp filter refuse the
 * calls before. They may run in a signal handler or in a vfork child (see
 * ns_stats_exit_now). Under a filter that kills the process on unlink (a
 * sandbox that allows little more than exit), _exit now dies by that
 * signal instead of exiting: NUMASHIM_STATS=off keeps such a program from
 * having a segment at all. quick_exit runs the handlers registered with
 * at_quick_exit, ours among them.
 *
 * Not covered: glibc's own internal calls of _exit (daemon()'s parent,
 * posix_spawn's child on failure), which do not go through the symbol;
 * the stale-segment sweep removes what they leave.
 */
#include "shim/shim.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static __attribute__((noreturn)) void exit_now(int status)
{
	ns_stats_exit_now();
	for (;;) {
		syscall(SYS_exit_group, status);
		syscall(SYS_exit, status);
		__builtin_trap();
	}
}

NS_EXPORT void _exit(int status)
{
	exit_now(status);
}

NS_EXPORT void _Exit(int status)
{
	exit_now(status);
}

static void on_quick_exit(void)
{
	ns_stats_exit_now();
}

__attribute__((constructor)) static void exit_init(void)
{
	at_quick_exit(on_quick_exit);
}
