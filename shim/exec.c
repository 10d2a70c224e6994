/*
 * The exec family, from a thread numashim placed (NUMASHIM_THREADS): the
 * new program kept the thread's one-node pin (Cpus_allowed_list of one
 * node), and every thread it made in turn. That is the case of a program
 * started by vfork and exec (a JDK 8 ProcessBuilder, Python's subprocess),
 * which runs no fork handler, and of a thread that execs the whole process
 * (found by a review). As around posix_spawn (shim/spawn.c), the thread has
 * the CPUs it would have had without numashim for the call, which the new
 * program inherits, and its pin back if the exec fails.
 *
 * In a vfork child these run on the parent thread's memory while other
 * threads of the parent go on: nothing here allocates, takes a lock or
 * looks a symbol up (dlsym does both). execve, execveat and fexecve are
 * the system calls glibc 2.36 makes for them (shim/os.c; fexecve:
 * execveat with AT_EMPTY_PATH, which glibc 2.36 itself relies on for
 * x86-64);
 * execv and the execl calls build on execve as glibc's do. The PATH search
 * of execvp, execvpe and execlp is glibc's execvpe, looked up at the start
 * (ns_exec_init) rather than rewritten here.
 */
#include "shim/shim.h"
#include "shim/os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>

extern char **environ;

typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);

static execvpe_fn real_execvpe;

/* glibc's execvpe (GLIBC_2.11), looked up by numashim's constructor so
 * that a vfork child does not; a call before that looks it up itself. */
void ns_exec_init(void)
{
	if (__atomic_load_n(&real_execvpe, __ATOMIC_ACQUIRE) == NULL)
		ns_resolve(&real_execvpe, "execvpe", "GLIBC_2.11");
}

/* The call's result (-1 with errno on failure): the thread unpinned for
 * it, its pin back if the exec failed, errno kept (ns_place_repin). */
static int unpinned_execveat(int dirfd, const char *path, char *const argv[],
			     char *const envp[], int flags)
{
	cpu_set_t pin;
	bool unpinned = ns_place_unpin(&pin);
	int rc = dirfd == AT_FDCWD && flags == 0 ? os_execve(path, argv, envp)
		 : os_execveat(dirfd, path, argv, envp, flags);

	if (unpinned)
		ns_place_repin(&pin);
	return rc;
}

NS_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return unpinned_execveat(AT_FDCWD, path, argv, envp, 0);
}

NS_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
		       char *const envp[], int flags)
{
	return unpinned_execveat(dirfd, path, argv, envp, flags);
}

NS_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (fd < 0 || argv == NULL || envp == NULL) {
		errno = EINVAL;
		return -1;
	}
	return unpinned_execveat(fd, "", argv, envp, AT_EMPTY_PATH);
}

NS_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

NS_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	cpu_set_t pin;
	bool unpinned;
	int rc;

	ns_exec_init();
	if (real_execvpe == NULL) { /* a glibc without it */
		errno = ENOSYS;
		return -1;
	}
	unpinned = ns_place_unpin(&pin);
	rc = real_execvpe(file, argv, envp);
	if (unpinned)
		ns_place_repin(&pin);
	return rc;
}

NS_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* What an execl call runs its arguments through. */
enum execl_kind { EXECL, EXECLP, EXECLE };

/* An execl call's arguments (from ap on, up to the NULL that ends them,
 * after arg) are counted, then copied into an array on the stack, as
 * glibc's execl does; execle's environment follows that NULL. */
static int execl_any(enum execl_kind kind, const char *path, const char *arg,
		     va_list ap)
{
	va_list count;
	size_t n = 1;

	va_copy(count, ap);
	while (va_arg(count, const char *) != NULL)
		n++;
	va_end(count);

	char *argv[n + 1];

	argv[0] = (char *)arg;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	switch (kind) {
	case EXECLE:
		return execve(path, argv, va_arg(ap, char *const *));
	case EXECLP:
		return execvpe(path, argv, environ);
	default:
		return execve(path, argv, environ);
	}
}

NS_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = execl_any(EXECL, path, arg, ap);
	va_end(ap);
	return rc;
}

NS_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = execl_any(EXECLP, file, arg, ap);
	va_end(ap);
	return rc;
}

NS_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = execl_any(EXECLE, path, arg, ap);
	va_end(ap);
	return rc;
}
