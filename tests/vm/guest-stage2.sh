#!/bin/sh
# Stage 2 of the guest boot, run by the initramfs's busybox sh (stage 1 has
# mounted the host root read-only at /host and vmrun's control share at /ctl).
# Sets up the chroot (proc/sys/dev, tmpfs, the writable build tree, optional
# cgroup v2 cpuset), runs /ctl/run.sh inside it and reports the exit status
# on the console as a marker line that vmrun parses.  Never returns: always
# ends in poweroff -f so a broken guest cannot hang the suite.
nonce=$1
. /ctl/config

fail() {
	echo "NUMASHIM-VM-ERROR:$nonce: stage2: $*"
	poweroff -f
}

# Kernel messages would interleave with the command's output.
dmesg -n 1

mount -t proc proc /host/proc || fail "mount proc"
mount -t sysfs sysfs /host/sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /host/dev || fail "mount devtmpfs"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts 2>/dev/null
# POSIX shared memory (numashim's stats segments live there), as on a host.
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || fail "tmpfs on /dev/shm"
# The host root is read-only: give programs private writable scratch space.
for d in /tmp /run /var/tmp; do
	if [ -d "/host$d" ]; then
		mount -t tmpfs -o mode=1777 tmpfs "/host$d" || fail "tmpfs on $d"
	fi
done
mkdir /host/tmp/.numashim-vm && mount --bind /ctl /host/tmp/.numashim-vm ||
	fail "bind-mount the control share"
if [ -n "$WORKDIR" ]; then
	# A build tree under /tmp is hidden by the tmpfs: recreate its path.
	[ -d "/host$WORKDIR" ] || mkdir -p "/host$WORKDIR" ||
		fail "$WORKDIR does not exist in the guest"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none work "/host$WORKDIR" ||
		fail "mount the writable build tree at $WORKDIR"
fi

# cpuset topology: run the command inside a cgroup v2 cpuset.
if [ -n "$CPUSET_MEMS" ]; then
	cg=/host/sys/fs/cgroup
	mount -t cgroup2 cgroup2 $cg || fail "mount cgroup2"
	echo +cpuset >$cg/cgroup.subtree_control || fail "enable the cpuset controller"
	mkdir $cg/numashim || fail "mkdir cgroup numashim"
	echo "$CPUSET_CPUS" >$cg/numashim/cpuset.cpus || fail "cpuset.cpus=$CPUSET_CPUS"
	echo "$CPUSET_MEMS" >$cg/numashim/cpuset.mems || fail "cpuset.mems=$CPUSET_MEMS"
	echo $$ >$cg/numashim/cgroup.procs || fail "join cgroup numashim"
fi

[ -n "$NUMA_BALANCING" ] && echo "$NUMA_BALANCING" >/proc/sys/kernel/numa_balancing

echo "NUMASHIM-VM-BEGIN:$nonce"
chroot /host /bin/sh /tmp/.numashim-vm/run.sh </dev/null
rc=$?
echo "NUMASHIM-VM-EXIT:$nonce:$rc"
sync
poweroff -f
