/*
 * alloc_io.so: preloaded before the shim, it replaces libc's open, openat,
 * read, write and close with versions that allocate a block and free it
 * first, as I/O tracers and fakechroot-style tools do. numashim decides
 * what to do in a process possibly inside jemalloc's own start, where such
 * an allocation would deadlock it: its decision must make no libc call of
 * these (shim/os.c uses raw system calls). The real work here is done with
 * raw system calls too (no dlsym, which may allocate itself). At exit it
 * prints how many allocations it made, so the test knows it was called.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long calls;

static void churn(void)
{
	void *volatile p = malloc(64);

	free(p);
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
}

/* The mode argument comes only with O_CREAT or O_TMPFILE. */
static int vopenat(int dir, const char *path, int flags, va_list ap)
{
	mode_t mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ?
		      (mode_t)va_arg(ap, int) : 0;

	churn();
	return (int)syscall(SYS_openat, dir, path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
	va_list ap;
	int fd;

	va_start(ap, flags);
	fd = vopenat(dir, path, flags, ap);
	va_end(ap);
	return fd;
}

int openat64(int dir, const char *path, int flags, ...)
	__attribute__((alias("openat")));

int open(const char *path, int flags, ...)
{
	va_list ap;
	int fd;

	va_start(ap, flags);
	fd = vopenat(AT_FDCWD, path, flags, ap);
	va_end(ap);
	return fd;
}

int open64(const char *path, int flags, ...)
	__attribute__((alias("open")));

ssize_t read(int fd, void *buf, size_t len)
{
	churn();
	return syscall(SYS_read, fd, buf, len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	churn();
	return syscall(SYS_write, fd, buf, len);
}

int close(int fd)
{
	churn();
	return (int)syscall(SYS_close, fd);
}

__attribute__((destructor)) static void report(void)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "alloc_io: %lu allocations\n",
			 __atomic_load_n(&calls, __ATOMIC_RELAXED));

	syscall(SYS_write, 2, msg, (size_t)n);
}
