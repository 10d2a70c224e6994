/*
 * Seccomp sandboxes.
 *
 * A program that installs a seccomp filter allows the system calls it
 * makes itself, and an allocator's (mmap, munmap, madvise, mremap, brk,
 * futex): not numashim's own, which a filter may answer by killing the
 * process. OpenSSH's pre-authentication child kills on mbind and
 * sched_getaffinity, among others: under 2 emulated nodes, 5 logins in 9
 * failed, its child killed with SIGSYS (syscall 204) at numashim's rebind
 * of a thread that had moved (found by the real-program review).
 *
 * So once a filter is in place numashim makes none of its own any more
 * (ns_sandbox_enter): no mbind (new extents and mappings are left to first
 * touch, which the thread's node arena still mostly makes local), no
 * rebinding of threads that move (no affinity reads), no placement of new
 * threads or of a forked child, no statistics refresh, and at exit no
 * removal of a segment made before (`numashim stat --gc` removes it once the
 * process has ended). The arenas, tags and origin-aware free stay.
 *
 * The filter is seen where it is installed: prctl(PR_SET_SECCOMP) (glibc
 * has no seccomp() wrapper) and syscall(SYS_seccomp) (libseccomp's way),
 * both interposed here. A filter a process inherits at its start (systemd's
 * SystemCallFilter=, a container's profile) is not seen: README says what
 * such a filter must allow. prctl and syscall make the system call
 * themselves rather than look up glibc's: dlsym may allocate, and our own
 * raw system calls (shim/os.c) come through this syscall too, inside the
 * allocator.
 */
#include "shim/shim.h"
#include "shim/log.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Before the filter is installed (if that fails, numashim stays quiet all
 * the same: the program meant to sandbox itself). */
void ns_sandbox_enter(void)
{
	if (__atomic_exchange_n(&ns.sandboxed, true, __ATOMIC_ACQ_REL))
		return;
	__atomic_store_n(&ns.mbind_ok, false, __ATOMIC_RELEASE);
	ns_stats_sandboxed();
	if (ns.cfg.verbose) {
		struct ns_line l;

		ns_line_init(&l);
		ns_line_str(&l, "a seccomp filter is in place: numashim makes "
			    "no system call of its own from now on (no mbind, "
			    "rebinding or statistics)", 0);
		ns_line_emit(&l);
	}
}

#if defined(__x86_64__)
static long raw6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* glibc's syscall(): six arguments taken whatever the call has, errno from
 * a result in [-4095, -1]. */
NS_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	long a[6], r;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_seccomp && (a[0] == SECCOMP_SET_MODE_FILTER ||
				  a[0] == SECCOMP_SET_MODE_STRICT))
		ns_sandbox_enter();
	r = raw6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if ((unsigned long)r > -4096UL) {
		errno = (int)-r;
		return -1;
	}
	return r;
}
#endif

NS_EXPORT int prctl(int option, ...)
{
	va_list ap;
	unsigned long a[4];

	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP &&
	    (a[0] == SECCOMP_MODE_FILTER || a[0] == SECCOMP_MODE_STRICT))
		ns_sandbox_enter();
	/* The syscall above on x86-64, glibc's elsewhere: -1 with errno. */
	return (int)syscall(SYS_prctl, option, a[0], a[1], a[2], a[3]);
}
