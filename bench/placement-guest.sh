#!/bin/bash
# placement-guest.sh: runs inside a tests/vm guest (bench/run --placement).
#   placement-guest.sh BINDIR SHIM JEMALLOC SETTLE_MS SCENARIO...
# Runs every tests/vm place_SCENARIO program under each placement
# configuration, with kernel NUMA balancing on (the programs keep rewriting
# their blocks SETTLE_MS ms first, so the scanner gets its chance) and off,
# and prints one line per run for bench/placement.py:
#   @@PLACE BALANCING CONFIG SCENARIO STATUS | the program's figure lines
# A SCENARIO written PROG:MODE runs place_PROG MODE (place_large's modes,
# which take no --settle).
set -u
bindir=$1 shim=$2 je=$3 settle=$4
shift 4
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(NUMASHIM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	case $v in NUMASHIM_VM_*) ;; *) unset "$v" ;; esac
done
echo "@@INFO nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)" \
	"cpus=$(nproc) kernel=$(uname -r)"
run() {  # BALANCING CONFIG SCENARIO CMD...
	local bal=$1 config=$2 scenario=$3 out rc lines
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	lines=$(printf '%s\n' "$out" | grep "^${scenario#*:}: " | tr '\n' ';')
	[ -n "$lines" ] || lines=$(printf '%s\n' "$out" | tail -n1)
	echo "@@PLACE $bal $config $scenario $rc | $lines"
}
for bal in on off; do
	if ! echo $([ $bal = on ] && echo 1 || echo 0) >/proc/sys/kernel/numa_balancing; then
		echo "@@INFO cannot set numa_balancing"
	fi
	for s in "$@"; do
		p=$bindir/place_${s%%:*}
		opt=()
		case $s in
		*:*) opt=("${s#*:}") ;;
		*)   [ $bal = on ] && opt=(--settle "$settle") ;;
		esac
		run $bal glibc       "$s" "$p" "${opt[@]}"
		run $bal jemalloc    "$s" env LD_PRELOAD="$je" "$p" "${opt[@]}"
		run $bal interleave  "$s" numactl --interleave=all "$p" "${opt[@]}"
		run $bal localalloc  "$s" numactl --localalloc "$p" "${opt[@]}"
		run $bal numashim    "$s" env LD_PRELOAD="$shim" "$p" "${opt[@]}"
		run $bal numashim-il "$s" env LD_PRELOAD="$shim" NUMASHIM_POLICY=interleave "$p" "${opt[@]}"
	done
done
