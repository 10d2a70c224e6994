/*
 * The OS seam: every raw system call numashim makes, behind one small
 * contract. Nothing here allocates through malloc. Functions return 0 or
 * -errno.
 */
#ifndef NUMASHIM_OS_H
#define NUMASHIM_OS_H

#include "policy/policy.h"

#include <stdbool.h>
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
NS_OS int os_writable(void *addr, size_t len); /* 0 or -errno */
/* A private futex: sleeps while *word == val (or until woken), wakes n;
 * errno kept. */
NS_OS void os_futex_wait(int *word, int val);
NS_OS void os_futex_wake(int *word, int n);
/* The system calls themselves: -1 with errno on failure. */
NS_OS int os_execve(const char *path, char *const argv[], char *const envp[]);
NS_OS int os_execveat(int dirfd, const char *path, char *const argv[],
		      char *const envp[], int flags);

/* madvise(MADV_NOHUGEPAGE): the range never gets transparent huge pages
 * (khugepaged respects it too). errno is left as it was. */
NS_OS int os_nohugepage(void *addr, size_t len);

/* Read a small file into buf (NUL-terminated); returns bytes or -errno. */
NS_OS ssize_t os_read_file(const char *path, char *buf, size_t len);

/* Whether this process's anonymous memory gets transparent huge pages
 * when first touched: 1 always, 0 only where madvise(MADV_HUGEPAGE) asks,
 * -1 never (THP off, disabled by prctl for this process, or no THP). */
NS_OS int os_thp_mode(void);

/*
 * The machine's topology from sysfs (/sys/devices/system/node) and the
 * process's allowed nodes (get_mempolicy MPOL_F_MEMS_ALLOWED). Falls back
 * to one node holding every online CPU when sysfs has no node directory.
 * `root` prefixes the sysfs paths ("" for the real one; tests pass a fake
 * tree).
 */
NS_OS int os_read_topology(const char *root, struct policy_topology *t);

/*
 * Drops from t the CPUs that are not online (sysfs's cpu/online list):
 * the one-node fallback counts every possible CPU, and NUMASHIM_FAKE_NODES
 * must split the online ones. Nothing changes when the list is unreadable.
 */
NS_OS void os_keep_online_cpus(const char *root, struct policy_topology *t);



/* Raw mmap family, straight to the kernel (errno set as glibc does). */
NS_OS void *os_mmap(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off);
NS_OS int os_munmap(void *addr, size_t len);
NS_OS ssize_t os_readlink(const char *path, char *buf, size_t len);
/* How many CPUs the calling thread may run on (0 if unknown). */
NS_OS int os_affinity_count(void);
/* All CPUs online, configured and allowed alike (jemalloc's percpu test):
 * how many, or 0. possible_top: os_read_topology's, or 0. */
NS_OS long os_cpus_all_ours(const char *root, long possible_top);
NS_OS void *os_mremap(void *old, size_t old_len, size_t new_len, int flags,
		      void *new_addr);
NS_OS void *os_shmat(int id, const void *addr, int flags);
NS_OS long os_shmdt(const void *addr);
/* move_pages(2) query (nodes == NULL) for the calling process. */
NS_OS long os_move_pages_query(unsigned long n, void **pages, int *status);
/* Size and attach count of a System V shm segment. */
NS_OS int os_shm_info(int id, size_t *size, unsigned long *nattch);
/* The policy mode (MPOL_*) of the mapping at addr: 0 or -errno. */
NS_OS int os_addr_policy(const void *addr, int *mode);
/* Whether the mapping at addr (two pages or more) is a hugetlb one. */
NS_OS bool os_is_hugetlb(const void *addr);
/* Raw mbind / set_mempolicy with the caller's arguments; -1 and errno. */
NS_OS long os_mbind_raw(void *start, unsigned long len, int mode,
			const unsigned long *mask, unsigned long maxnode,
			unsigned flags);
NS_OS long os_set_mempolicy_raw(int mode, const unsigned long *mask,
				unsigned long maxnode);
#endif
