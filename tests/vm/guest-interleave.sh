#!/bin/sh
# guest-interleave.sh: inside a vmrun guest, NUMASHIM_POLICY=interleave
# must spread a small-block heap (place_pinned: one pinned thread per node,
# blocks of 16..8192 bytes) evenly over the nodes, as numactl
# --interleave=all does, with transparent huge pages "always" (the Debian
# kernel's default) and "never". With "always" each 2 MiB of an extent is
# one huge page on one node; extents whose huge pages all landed on one
# node once put 92 % of such a heap there.
#
# Each node's share must be within $NUMASHIM_VM_MAX_SKEW points (default:
# 10 on two nodes, 5 on more) of an even split. numactl's figure is
# printed beside it as the baseline. A huge page is 1/9 of a 4 MiB-per-node
# heap on four nodes: there the heaps are 8 MiB a node, so that one huge
# page more or less is not a failure.
# Usage: guest-interleave.sh   (NUMASHIM_LIB must be set)
set -eu
bin=${NUMASHIM_BUILDDIR:-.}/tests/vm/place_pinned
lib=${NUMASHIM_LIB:?NUMASHIM_LIB is not set}
thp=/sys/kernel/mm/transparent_hugepage/enabled
nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
if [ "$nodes" -eq 2 ]; then
	skew=${NUMASHIM_VM_MAX_SKEW:-10} sizes="4 8:2"
else
	skew=${NUMASHIM_VM_MAX_SKEW:-5} sizes="8 8:2"
fi
bad=0

[ -w "$thp" ] || { echo "guest-interleave: SKIP: $thp not writable"; exit 77; }
was=$(sed 's/.*\[\(.*\)\].*/\1/' "$thp")

# run LABEL CMD...: prints the program's lines, prefixed; a failure of a
# numashim run (or any run that could not measure) sets bad.
run() {
	label=$1
	shift
	if out=$("$@" 2>&1); then rc=0; else rc=$?; fi
	printf '%s\n' "$out" | sed "s/^/[$label] /"
	case $label in
	*numashim*) [ $rc -eq 0 ] || { echo "[$label] FAIL (status $rc)"; bad=1; } ;;
	*) [ $rc -eq 0 ] || { echo "[$label] ERROR (status $rc)"; bad=1; } ;;
	esac
}

for mode in always never; do
	echo "$mode" >"$thp"
	for s in $sizes; do
		# MiB per thread[:threads per node]
		size="--mib ${s%:*} --threads $(echo "$s:1" | cut -d: -f2)"
		# shellcheck disable=SC2086
		run "thp $mode, numactl --interleave=all, $size" \
			numactl --interleave=all "$bin" $size
		# shellcheck disable=SC2086
		run "thp $mode, numashim interleave, $size" \
			env NUMASHIM_POLICY=interleave LD_PRELOAD="$lib" \
			"$bin" --max-skew "$skew" $size
	done
done
echo "$was" >"$thp"
[ $bad -eq 0 ] && echo "guest-interleave: every node within $skew points of an even share" ||
	echo "guest-interleave: a numashim run FAILED"
exit $bad
