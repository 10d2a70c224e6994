#!/bin/sh
# guest-percpu.sh: inside a vmrun guest, whether a process numashim passes
# through because it has a memory policy of its own (numactl --membind)
# gets jemalloc's per-CPU arenas: on the 2n guest (every possible CPU
# online) it does, on the hotplug guest (CPUs 2-3 possible, not online)
# it must not, as jemalloc would refuse them there. numashim reads the
# possible CPUs from sysfs, not from the nodes' CPU lists, which hold only
# the online ones (found by a review). Nothing may reach stderr but
# jemalloc's statistics. Exit 0 ok, 1 wrong, 77 NUMASHIM_LIB unset.
set -eu

topo=${NUMASHIM_VM_TOPOLOGY:?not inside a vmrun guest}
[ -n "${NUMASHIM_LIB-}" ] || { echo "guest-percpu: NUMASHIM_LIB unset"; exit 77; }
case $topo in
2n)      want=percpu ;;
hotplug) want=disabled ;;
*) echo "guest-percpu: no expectation for topology $topo"; exit 1 ;;
esac
bad=0
echo "cpus possible $(cat /sys/devices/system/cpu/possible), online $(cat /sys/devices/system/cpu/online)"

# percpu LABEL CMD...: jemalloc's opt.percpu_arena for CMD's run of /bin/true
percpu() {
	label=$1
	shift
	err=$("$@" env MALLOC_CONF=stats_print:true /bin/true 2>&1 >/dev/null) || {
		echo "  FAIL $label: status $?"; bad=1; return 0; }
	got=$(printf '%s\n' "$err" | sed -n 's/^  opt.percpu_arena: "\(.*\)"$/\1/p')
	other=$(printf '%s\n' "$err" | sed -n '/^___ Begin jemalloc statistics ___/q;p')
	echo "  $label: percpu_arena '$got'"
	if [ -n "$other" ]; then
		printf '  FAIL %s: stderr before the statistics:\n%s\n' "$label" "$other"
		bad=1
	fi
}

percpu "numashim, numactl --membind=0" \
	numactl --membind=0 env LD_PRELOAD="$NUMASHIM_LIB"
if [ "$got" != "$want" ]; then
	echo "  FAIL expected percpu_arena '$want'"; bad=1
fi
# Active on both guests (2 nodes): numashim binds threads itself.
percpu "numashim" env LD_PRELOAD="$NUMASHIM_LIB"
if [ "$got" != disabled ]; then
	echo "  FAIL expected percpu_arena 'disabled' in an active process"; bad=1
fi
# What makes the hotplug guest a case: jemalloc itself gives per-CPU
# arenas up there, with a line on stderr.
if [ "$topo" = hotplug ] && [ -z "${JEMALLOC_SO-}" ]; then
	echo "  note: JEMALLOC_SO unset: not checked that jemalloc itself refuses per-CPU arenas here"
elif [ "$topo" = hotplug ]; then
	msg=$(env LD_PRELOAD="$JEMALLOC_SO" MALLOC_CONF=percpu_arena:percpu /bin/true 2>&1)
	echo "  plain jemalloc with percpu_arena:percpu: ${msg:-nothing on stderr}"
	case $msg in
	*deterministic*) ;;
	*) echo "  FAIL jemalloc did not refuse per-CPU arenas here: the case proves nothing"; bad=1 ;;
	esac
fi
exit $bad
