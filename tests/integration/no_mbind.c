/*
 * Runs a command with mbind, set_mempolicy and move_pages failing with
 * EPERM, as Docker's default seccomp profile makes them fail. The shim
 * must warn once and keep the program running. With --affinity,
 * sched_setaffinity fails too (systemd's SystemCallFilter=~@resources).
 *
 *   usage: no_mbind [--affinity] CMD [ARGS...]
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DENY(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

int main(int argc, char **argv)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		DENY(SYS_mbind),
		DENY(SYS_set_mempolicy),
		DENY(SYS_move_pages),
		DENY(SYS_sched_setaffinity), /* skipped without --affinity */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	bool affinity = argc > 1 && strcmp(argv[1], "--affinity") == 0;
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	if (!affinity) { /* the last DENY's two instructions go */
		filter[prog.len - 3] = filter[prog.len - 1];
		prog.len -= 2;
	} else {
		argv++;
		argc--;
	}

	if (argc < 2) {
		fprintf(stderr, "usage: %s [--affinity] CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("no_mbind: seccomp");
		return 77;
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
