#include "shim/os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <numaif.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

void os_write_stderr(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = syscall(SYS_write, STDERR_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

const char *os_strerror(int err)
{
	/* strerrordesc_np returns a static string: no locale, no malloc. */
	const char *s = strerrordesc_np(err < 0 ? -err : err);

	return s ? s : "unknown error";
}

int os_getcpu(void)
{
	return sched_getcpu();
}

int os_mbind(void *addr, size_t len, int mode, policy_nodemask_t mask,
	     unsigned flags)
{
	unsigned long m = (unsigned long)mask;
	int saved = errno;

	/* maxnode counts bits + 1 (the kernel's historic off-by-one). */
	if (syscall(SYS_mbind, addr, len, mode, mode == MPOL_DEFAULT ? NULL : &m,
		    mode == MPOL_DEFAULT ? 0UL : POLICY_MAX_NODES + 1UL,
		    flags) == 0)
		return 0;
	{
		int rc = -errno;

		errno = saved;
		return rc;
	}
}

int os_get_mempolicy(int *mode, policy_nodemask_t *mask)
{
	unsigned long m = 0;
	int saved = errno;

	if (syscall(SYS_get_mempolicy, mode, &m, POLICY_MAX_NODES + 1UL, NULL,
		    0UL) != 0) {
		int rc = -errno;

		errno = saved;
		return rc;
	}
	*mask = m;
	return 0;
}

static int allowed_nodes(policy_nodemask_t *mask)
{
	unsigned long m = 0;
	int saved = errno;

	if (syscall(SYS_get_mempolicy, NULL, &m, POLICY_MAX_NODES + 1UL, NULL,
		    (unsigned long)MPOL_F_MEMS_ALLOWED) != 0) {
		int rc = -errno;

		errno = saved;
		return rc;
	}
	*mask = m;
	return 0;
}

int os_nohugepage(void *addr, size_t len)
{
	int saved = errno, rc = 0;

	if (madvise(addr, len, MADV_NOHUGEPAGE) != 0)
		rc = -errno;
	errno = saved;
	return rc;
}

/* Read-only: its pages read as zeros (the zero page) until os_writable. */
void *os_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int os_writable(void *addr, size_t len)
{
	int saved = errno, rc = 0;

	if (mprotect(addr, len, PROT_READ | PROT_WRITE) != 0)
		rc = -errno;
	errno = saved;
	return rc;
}

void os_futex_wait(int *word, int val)
{
	int saved = errno;

	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
	errno = saved;
}

void os_futex_wake(int *word, int n)
{
	int saved = errno;

	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
	errno = saved;
}

int os_execve(const char *path, char *const argv[], char *const envp[])
{
	return (int)syscall(SYS_execve, path, argv, envp);
}

int os_execveat(int dirfd, const char *path, char *const argv[],
		char *const envp[], int flags)
{
	return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

/* Raw system calls here and in os_write_stderr, not libc's wrappers: the
 * start-up decision (shim/init.c) may run inside jemalloc's own start,
 * where a wrapper another preloaded library replaced with one that
 * allocates would deadlock the process. */
ssize_t os_read_file(const char *path, char *buf, size_t len)
{
	int saved = errno;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0) {
		int rc = -errno;

		errno = saved;
		return rc;
	}
	while (got + 1 < len) {
		ssize_t n = syscall(SYS_read, fd, buf + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	syscall(SYS_close, fd);
	buf[got] = '\0';
	errno = saved;
	return (ssize_t)got;
}

int os_thp_mode(void)
{
	char buf[128];
	int saved = errno;
	int off = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) > 0;

	errno = saved;
	/* "always [madvise] never": the bracketed word is in force. */
	if (off || os_read_file("/sys/kernel/mm/transparent_hugepage/enabled",
				buf, sizeof(buf)) <= 0)
		return -1;
	if (strstr(buf, "[always]"))
		return 1;
	return strstr(buf, "[madvise]") ? 0 : -1;
}

/* ---------------------------------------------------------------- sysfs */

struct node_path {
	char buf[4096];
};

#define ROOT_MAX 3968 /* leaves room for the longest sysfs path we build */

static const char *node_file(struct node_path *p, const char *root, int node,
			     const char *file)
{
	char num[8], *q = num + sizeof(num);

	*--q = '\0';
	do {
		*--q = (char)('0' + node % 10);
		node /= 10;
	} while (node);
	p->buf[0] = '\0';
	strcat(p->buf, root);
	strcat(p->buf, "/sys/devices/system/node/node");
	strcat(p->buf, q);
	strcat(p->buf, "/");
	strcat(p->buf, file);
	return p->buf;
}

static const char *sys_file(struct node_path *p, const char *root,
			    const char *rel)
{
	p->buf[0] = '\0';
	strcat(p->buf, root);
	strncat(p->buf, rel, sizeof(p->buf) - ROOT_MAX - 1);
	return p->buf;
}

struct mask_ctx {
	policy_nodemask_t mask;
};

static void add_bit(void *c, long id)
{
	((struct mask_ctx *)c)->mask |= policy_node_bit((int)id);
}

static int read_mask(const char *path, policy_nodemask_t *out)
{
	char buf[512];
	struct mask_ctx c = { 0 };
	ssize_t n = os_read_file(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	int rc = policy_list_foreach(buf, POLICY_MAX_NODES, add_bit, &c);

	if (rc)
		return rc; /* -ERANGE: a node id of 64 or more */
	*out = c.mask;
	return 0;
}

struct cpu_ctx {
	struct policy_topology *t;
	int node;
};

static void add_cpu(void *c, long cpu)
{
	struct cpu_ctx *x = c;

	x->t->cpu_node[cpu] = (int16_t)x->node;
	if (cpu + 1 > x->t->nr_cpus)
		x->t->nr_cpus = (int)cpu + 1;
}

static void read_distances(const char *root, struct policy_topology *t, int node)
{
	struct node_path p;
	char buf[1024], *s = buf;
	int to = 0;

	if (os_read_file(node_file(&p, root, node, "distance"), buf,
			 sizeof(buf)) <= 0)
		return;
	/* One value per online node, in node order. */
	while (*s && to < POLICY_MAX_NODES) {
		long v = 0;

		while (*s == ' ' || *s == '\n')
			s++;
		if (*s < '0' || *s > '9')
			break;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (*s++ - '0');
			if (v > 255)
				v = 255; /* saturate: no overflow on junk */
		}
		while (to < POLICY_MAX_NODES && !(t->online & policy_node_bit(to)))
			to++;
		/* Below 10 (the local distance) is not a distance: unknown. */
		if (to < POLICY_MAX_NODES)
			t->distance[node][to++] = (uint8_t)(v < 10 ? 0 : v);
	}
}

struct cpu_count {
	long n, top; /* how many, the highest id + 1 */
};

static void count_cpu(void *arg, long cpu)
{
	struct cpu_count *c = arg;

	c->n++;
	if (cpu + 1 > c->top)
		c->top = cpu + 1;
}

/* A sysfs CPU list (cpu/possible, cpu/online) counted into *c; false when
 * it could not be read or parsed. */
static bool read_cpu_list(const char *path, struct cpu_count *c)
{
	char buf[4096];

	c->n = c->top = 0;
	return os_read_file(path, buf, sizeof(buf)) > 0 &&
	       policy_list_foreach(buf, 1L << 22, count_cpu, c) == 0;
}

/* The highest possible CPU id + 1, read from sysfs, where glibc's sysconf
 * may allocate (older versions use opendir; see os_read_file). Where sysfs
 * has no such list (a container without /sys), the CPUs the process may
 * run on; *from_sysfs is then 0, else the same value. */
static long possible_cpus(const char *root, long *from_sysfs)
{
	struct node_path p;
	struct cpu_count c;

	*from_sysfs = 0;
	if (!read_cpu_list(sys_file(&p, root, "/sys/devices/system/cpu/possible"),
			   &c) || c.top == 0)
		return os_affinity_count();
	*from_sysfs = c.top;
	return c.top;
}

/* How many CPUs a sysfs list names, if they are 0..n-1; else -1. */
static long count_list(const char *path)
{
	struct cpu_count c;

	if (!read_cpu_list(path, &c) || c.n != c.top)
		return -1;
	return c.n;
}

/* jemalloc's own test before it uses per-CPU arenas (5.3's
 * malloc_cpu_count_is_deterministic: otherwise it gives them up and says
 * so on stderr): as many CPUs online as configured, and the process may
 * run on all of them. glibc's sysconf counts the same two files. Also
 * what jemalloc takes for granted there: that its cpu_set_t holds them
 * all (beyond 1,024 CPUs its sched_getaffinity fails and it counts an
 * uninitialised set), and that CPU ids run 0..n-1 (a higher id would pick
 * an arena index past the per-CPU ones, possibly its huge arena's).
 * Returns that count of CPUs, or 0. possible_top: the highest possible CPU
 * id + 1 as the caller read it (os_read_topology's possible_top, not
 * nr_cpus, which a multi-node host builds from its online CPUs), or 0 to
 * read it here. */
long os_cpus_all_ours(const char *root, long possible_top)
{
	struct node_path p;
	long online = count_list(sys_file(&p, root, "/sys/devices/system/cpu/online"));
	/* The online CPUs are 0..online-1 (count_list), all of them
	 * possible: with no possible id above, the possible ones are the
	 * same. */
	long possible = possible_top > 0 ? possible_top :
		count_list(sys_file(&p, root, "/sys/devices/system/cpu/possible"));

	return online > 0 && online <= CPU_SETSIZE && online == possible &&
	       online == os_affinity_count() ? online : 0;
}

/* Machines numashim cannot describe (policy.h's limits): a plan over part
 * of one sent the threads of the CPUs left out to node 0's arenas. */
#define TOO_MANY_NODES "sysfs lists node ids above 63 (numashim places " \
	"memory on nodes 0-63 only)"
#define TOO_MANY_CPUS "sysfs lists CPU ids above 1023 (numashim maps " \
	"CPUs 0-1023 only; the others would take node 0's arenas)"

int os_read_topology(const char *root, struct policy_topology *t)
{
	struct node_path p;
	policy_nodemask_t online = 0;
	const char *cut = NULL;
	long ncpu, top;
	int rc;

	if (strlen(root) > ROOT_MAX) {
		policy_topology_single(t, os_affinity_count());
		return -ENAMETOOLONG;
	}
	ncpu = possible_cpus(root, &top);
	policy_topology_single(t, ncpu > 0 ? (int)ncpu : 1);
	t->possible_top = top;
	rc = read_mask(sys_file(&p, root, "/sys/devices/system/node/online"),
		       &online);
	if (rc == -ERANGE) {
		t->unsupported = TOO_MANY_NODES;
		return 0;
	}
	if (rc || online == 0)
		return 0; /* no NUMA in sysfs: one node */
	/* Node 0 alone (most machines): every CPU is on it, and reading its
	 * lists would only cost each process start another 10 system calls. */
	if (online == policy_node_bit(0))
		return 0;
	t->online = online;
	if (read_mask(sys_file(&p, root, "/sys/devices/system/node/has_memory"),
		      &t->has_memory) || t->has_memory == 0)
		t->has_memory = online;
	for (int c = 0; c < POLICY_MAX_CPUS; c++)
		t->cpu_node[c] = -1;
	t->nr_cpus = 0;
	t->nr_nodes = 0;
	for (int n = 0; n < POLICY_MAX_NODES; n++) {
		char buf[4096];
		struct cpu_ctx c = { t, n };

		if (!(online & policy_node_bit(n)))
			continue;
		t->nr_nodes = n + 1;
		if (os_read_file(node_file(&p, root, n, "cpulist"), buf,
				 sizeof(buf)) >= 0 &&
		    policy_list_foreach(buf, POLICY_MAX_CPUS, add_cpu, &c) ==
			    -ERANGE)
			cut = TOO_MANY_CPUS;
		read_distances(root, t, n);
	}
	if (t->nr_cpus == 0) {
		/* No node lists any CPU: sysfs is unusable, assume one node. */
		policy_topology_single(t, ncpu > 0 ? (int)ncpu : 1);
		t->possible_top = top;
		t->unsupported = cut;
		return 0;
	}
	t->unsupported = cut;
	if (root[0] == '\0') {
		policy_nodemask_t allowed = 0;

		if (allowed_nodes(&allowed) == 0 && allowed != 0)
			t->allowed = allowed & online;
		else
			t->allowed = online;
	} else {
		/* A fake tree may carry the process's mems in a file. */
		if (read_mask(sys_file(&p, root, "/mems_allowed"), &t->allowed) ||
		    t->allowed == 0)
			t->allowed = online;
	}
	return 0;
}

struct online_ctx {
	char on[POLICY_MAX_CPUS];
};

static void mark_online(void *c, long cpu)
{
	((struct online_ctx *)c)->on[cpu] = 1;
}

/* Only for NUMASHIM_FAKE_NODES (shim/init.c): one more file for every
 * process start is not worth it otherwise, since a one-node plan passes
 * through and a multi-node machine's cpulists hold online CPUs only. With
 * a possible list longer than the online one (a VM with CPU hot-plug
 * slots: possible 0-7, online 0-1), the fake nodes were cut from CPUs 0-7
 * and both online CPUs landed on virtual node 0 (found by a review). */
void os_keep_online_cpus(const char *root, struct policy_topology *t)
{
	struct node_path p;
	struct online_ctx c;
	char buf[4096];

	memset(&c, 0, sizeof(c));
	if (strlen(root) > ROOT_MAX ||
	    os_read_file(sys_file(&p, root, "/sys/devices/system/cpu/online"),
			 buf, sizeof(buf)) <= 0 ||
	    policy_list_foreach(buf, POLICY_MAX_CPUS, mark_online, &c) != 0)
		return;
	for (int cpu = 0; cpu < t->nr_cpus && cpu < POLICY_MAX_CPUS; cpu++)
		if (!c.on[cpu])
			t->cpu_node[cpu] = -1;
}

/* ---------------------------------------------------------- mmap family */

void *os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int os_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

ssize_t os_readlink(const char *path, char *buf, size_t len)
{
	return (ssize_t)syscall(SYS_readlinkat, AT_FDCWD, path, buf, len);
}

int os_affinity_count(void)
{
	unsigned long mask[128]; /* 8,192 CPUs */
	int saved = errno, count = 0;
	long n = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);

	errno = saved;
	for (long i = 0; i < n / (long)sizeof(mask[0]); i++)
		count += __builtin_popcountl(mask[i]);
	return count;
}

void *os_mremap(void *old, size_t old_len, size_t new_len, int flags,
		void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags,
			       new_addr);
}

void *os_shmat(int id, const void *addr, int flags)
{
	return (void *)syscall(SYS_shmat, id, addr, flags);
}

long os_shmdt(const void *addr)
{
	return syscall(SYS_shmdt, addr);
}

/* Called from malloc and free (an inline refresh): keeps errno, which a
 * refusal (EPERM under a seccomp profile) would set. 0 or -errno. */
long os_move_pages_query(unsigned long n, void **pages, int *status)
{
	int saved = errno;
	long rc = syscall(SYS_move_pages, 0, n, pages, NULL, status, 0);

	if (rc != 0)
		rc = rc < 0 ? -errno : -EIO;
	errno = saved;
	return rc;
}

int os_shm_info(int id, size_t *size, unsigned long *nattch)
{
	struct shmid_ds ds;
	int saved = errno;

	if (syscall(SYS_shmctl, id, IPC_STAT, &ds) != 0) {
		int rc = -errno;

		errno = saved;
		return rc;
	}
	*size = ds.shm_segsz;
	*nattch = ds.shm_nattch;
	return 0;
}

int os_addr_policy(const void *addr, int *mode)
{
	unsigned long m[(POLICY_MAX_NODES + 1 + 63) / 64 + 1];
	int saved = errno, rc = 0;

	if (syscall(SYS_get_mempolicy, mode, m, POLICY_MAX_NODES + 1UL, addr,
		    (unsigned long)MPOL_F_ADDR) != 0)
		rc = -errno;
	errno = saved;
	return rc;
}

/* The kernel refuses an mremap inside a hugetlb mapping at an address not
 * aligned to its huge page (EINVAL), and one that keeps the size of a
 * range of a normal mapping changes nothing and returns it. A SysV
 * segment's hugetlb flag is seen nowhere else without /proc (shmctl's
 * mode has no bit for it): a segment made by another process is known
 * only by its mapping. */
bool os_is_hugetlb(const void *addr)
{
	int saved = errno;
	long r = syscall(SYS_mremap, (const char *)addr + 4096, 4096UL, 4096UL,
			 0, NULL);
	bool huge = r == -1 && errno == EINVAL;

	errno = saved;
	return huge;
}

long os_mbind_raw(void *start, unsigned long len, int mode,
		  const unsigned long *mask, unsigned long maxnode,
		  unsigned flags)
{
	return syscall(SYS_mbind, start, len, mode, mask, maxnode, flags);
}

long os_set_mempolicy_raw(int mode, const unsigned long *mask,
			  unsigned long maxnode)
{
	return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}
