#!/bin/sh
# guest-topology.sh: inside a vmrun guest, check that the topology named in
# $NUMASHIM_VM_TOPOLOGY is what the kernel shows (sysfs, /proc, cgroup).
# With --pinned, also run place_pinned without and with the shim there.
# Exit 0 ok, 1 mismatch or failed run, 77 NUMASHIM_LIB unset (--pinned).
set -eu

topo=${NUMASHIM_VM_TOPOLOGY:?not inside a vmrun guest}
pinned=0
[ "${1-}" = --pinned ] && pinned=1
sysnode=/sys/devices/system/node
bad=0

check() {  # what expected actual
	if [ "$2" = "$3" ]; then
		printf '  ok   %-34s %s\n' "$1" "$3"
	else
		printf '  FAIL %-34s expected %s, got %s\n' "$1" "$2" "$3"
		bad=1
	fi
}

run() {  # label preload args...: one place_pinned run, output indented
	label=$1 preload=$2
	shift 2
	out=$(LD_PRELOAD=$preload "$prog" "$@" 2>&1) && rc=0 || rc=$?
	printf '%s\n' "$out" | sed "s/^/  [$label] /"
	return $rc
}

# Expected: nodes, nodes with CPUs, nodes with memory, distance rows, mems.
case $topo in
2n)      exp="0-1 0-1 0-1"; dist="0:10 20";                      mems=0-1 ;;
4n)      exp="0-3 0-3 0-3"; dist="0:10 20 30 30|2:30 30 10 20";  mems=0-3 ;;
memonly) exp="0-2 0-1 0-2"; dist="2:20 30 10";                   mems=0-2 ;;
cpuonly) exp="0-2 0-2 0-1"; dist="2:30 20 10";                   mems=0-1 ;;
cpuset)  exp="0-2 0-2 0-2"; dist="2:30 20 10";                   mems=0-1 ;;
*) echo "guest-topology: unknown topology $topo"; exit 1 ;;
esac

echo "topology $topo:"
set -- $exp
check "nodes (sysfs online)" "$1" "$(cat $sysnode/online)"
check "nodes with CPUs (has_cpu)" "$2" "$(cat $sysnode/has_cpu)"
check "nodes with memory (has_memory)" "$3" "$(cat $sysnode/has_memory)"
IFS='|'
for d in $dist; do
	check "node ${d%%:*} distances" "${d#*:}" "$(cat $sysnode/node${d%%:*}/distance)"
done
unset IFS
check "Mems_allowed_list" "$mems" \
	"$(sed -n 's/^Mems_allowed_list:[[:space:]]*//p' /proc/self/status)"
if [ "$topo" = cpuset ]; then
	check "cgroup" "0::/numashim" "$(cat /proc/self/cgroup)"
	check "cpuset.mems.effective" "0-1" \
		"$(cat /sys/fs/cgroup/numashim/cpuset.mems.effective)"
fi
# numactl -H for the log: the same facts as a person reads them.
numactl -H | sed 's/^/  | /'

[ $pinned = 1 ] || exit $bad
prog=${NUMASHIM_BUILDDIR:-.}/tests/vm/place_pinned
echo "pinned scenario in $topo (local = on the thread's node, or the nearest with usable memory):"
run glibc "" -v || bad=1
if [ -n "${JEMALLOC_SO-}" ] && [ -e "$JEMALLOC_SO" ]; then
	run jemalloc "$JEMALLOC_SO" -v || bad=1
fi
if [ -z "${NUMASHIM_LIB-}" ]; then
	echo "guest-topology: NUMASHIM_LIB unset: numashim not run, nothing asserted"
	[ $bad = 0 ] && exit 77
	exit 1
fi
# Threads on a CPU-only node have no local memory: there only that the run
# works and its pages are on nodes with memory is asserted (place_pinned
# exits 2 otherwise). Elsewhere "local" includes "nearest allowed node" for
# the node that cpuset.mems excludes.
case $topo in cpuonly) min= ;; *) min="--min-local ${NUMASHIM_VM_MIN_LOCAL:-99}" ;; esac
run numashim "$NUMASHIM_LIB" -v $min || bad=1
exit $bad
