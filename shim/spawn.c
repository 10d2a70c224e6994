/*
 * Programs started without fork: posix_spawn, posix_spawnp, system and
 * popen. glibc starts them with clone(CLONE_VFORK), which runs no fork
 * handler, so a program started by a thread numashim placed
 * (NUMASHIM_THREADS) kept that thread's one-node pin, and everything it
 * started in turn (a JVM's ProcessBuilder uses posix_spawn). Around the
 * call the thread has the CPUs it would have had without numashim
 * (shim/thread_place.c); the child inherits them at the clone. system
 * waits for its child meanwhile, so the thread runs unpinned only while
 * it waits. A thread numashim did not place calls straight through.
 *
 * vfork followed by an exec call is handled by the exec family's wrappers
 * (shim/exec.c). Not reached: a raw clone followed by a raw exec, and
 * glibc's own internal calls (none of these four is called through the
 * PLT inside glibc).
 */
#include "shim/shim.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

static struct {
	spawn_fn spawn, spawnp;
	int (*system)(const char *);
	FILE *(*popen)(const char *, const char *);
} R;

/* The real call, or NULL with errno ENOSYS when glibc has none. */
static void *real(void *slot, const char *name, const char *version)
{
	void *f = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);

	if (f == NULL && ns_resolve(slot, name, version) == 0)
		f = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);
	if (f == NULL)
		errno = ENOSYS;
	return f;
}

static int spawn(spawn_fn f, pid_t *pid, const char *path,
		 const posix_spawn_file_actions_t *acts,
		 const posix_spawnattr_t *attr, char *const argv[],
		 char *const envp[])
{
	cpu_set_t pin;
	bool unpinned;
	int rc;

	if (f == NULL)
		return ENOSYS;
	unpinned = ns_place_unpin(&pin);
	rc = f(pid, path, acts, attr, argv, envp);
	if (unpinned)
		ns_place_repin(&pin);
	return rc;
}

/* GLIBC_2.15: the posix_spawn that reports a failed exec as its error
 * (the 2.2.5 one let the child exit 127). */
NS_EXPORT int posix_spawn(pid_t *pid, const char *path,
			  const posix_spawn_file_actions_t *acts,
			  const posix_spawnattr_t *attr, char *const argv[],
			  char *const envp[])
{
	return spawn(real(&R.spawn, "posix_spawn", "GLIBC_2.15"), pid, path,
		     acts, attr, argv, envp);
}

NS_EXPORT int posix_spawnp(pid_t *pid, const char *file,
			   const posix_spawn_file_actions_t *acts,
			   const posix_spawnattr_t *attr, char *const argv[],
			   char *const envp[])
{
	return spawn(real(&R.spawnp, "posix_spawnp", "GLIBC_2.15"), pid, file,
		     acts, attr, argv, envp);
}

NS_EXPORT int system(const char *cmd)
{
	int (*f)(const char *) = real(&R.system, "system", NULL);
	cpu_set_t pin;
	bool unpinned;
	int rc;

	if (f == NULL)
		return -1;
	unpinned = cmd != NULL && ns_place_unpin(&pin);
	rc = f(cmd);
	if (unpinned)
		ns_place_repin(&pin);
	return rc;
}

NS_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	FILE *(*f)(const char *, const char *) = real(&R.popen, "popen", NULL);
	cpu_set_t pin;
	bool unpinned;
	FILE *fp;

	if (f == NULL)
		return NULL;
	unpinned = ns_place_unpin(&pin);
	fp = f(cmd, mode);
	if (unpinned)
		ns_place_repin(&pin);
	return fp;
}
