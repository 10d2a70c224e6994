/*
 * The OS seam: every raw system call numashim makes, behind one small
 * contract. Nothing here allocates through malloc. Functions return 0 or
 * -errno.
 */
#ifndef NUMASHIM_OS_H
#define NUMASHIM_OS_H

#include "policy/policy.h"

#include <stddef.h>
#include <sys/types.h>

#define NS_OS __attribute__((visibility("hidden")))

NS_OS void os_write_stderr(const char *buf, size_t len);
NS_OS const char *os_strerror(int err);

/* The CPU the caller runs on now (glibc reads it from rseq: no syscall). */
NS_OS int os_getcpu(void);

/* mbind(2) with a node mask of real nodes; mode is an MPOL_* value. */
NS_OS int os_mbind(void *addr, size_t len, int mode, policy_nodemask_t mask,
		   unsigned flags);
/* The calling thread's policy mode (MPOL_*) and node mask. */
NS_OS int os_get_mempolicy(int *mode, policy_nodemask_t *mask);

/* Reserve address space that costs nothing until touched (reads of
 * untouched pages see zeros). */
NS_OS void *os_reserve(size_t len);

/* Read a small file into buf (NUL-terminated); returns bytes or -errno. */
NS_OS ssize_t os_read_file(const char *path, char *buf, size_t len);

/*
 * The machine's topology from sysfs (/sys/devices/system/node) and the
 * process's allowed nodes (get_mempolicy MPOL_F_MEMS_ALLOWED). Falls back
 * to one node holding every online CPU when sysfs has no node directory.
 * `root` prefixes the sysfs paths ("" for the real one; tests pass a fake
 * tree).
 */
NS_OS int os_read_topology(const char *root, struct policy_topology *t);

#endif
