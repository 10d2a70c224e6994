#!/bin/sh
# guest-large.sh: inside a vmrun guest, the large-buffer scenarios
# (tests/vm/place_large.c): each under glibc (and numactl where it is the
# comparison) as a baseline, printed, and under numashim, asserted.
# Usage: guest-large.sh   (NUMASHIM_LIB must be set)
set -eu
bin=${NUMASHIM_BUILDDIR:-.}/tests/vm/place_large
lib=${NUMASHIM_LIB:?NUMASHIM_LIB is not set}
nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
bad=0

# run LABEL PRELOAD [ENV=...] -- ARGS: prints the program's lines, prefixed.
run() {
	label=$1 pre=$2
	shift 2
	envs=
	while [ "$1" != -- ]; do envs="$envs $1"; shift; done
	shift
	# shellcheck disable=SC2086
	if out=$(env LD_PRELOAD="$pre" $envs "$bin" "$@" 2>&1); then rc=0; else rc=$?; fi
	printf '%s\n' "$out" | sed "s/^/[$label] /"
	case $label in
	numashim*) [ $rc -eq 0 ] || { echo "[$label] FAIL (status $rc)"; bad=1; } ;;
	# A baseline is printed, never asserted. Status 2 is "could not
	# measure": with NUMA balancing on, the kernel may be migrating
	# glibc's pages when move_pages asks (4000 of 65537 did not answer
	# once). Anything else (a crash) is an error of the test itself.
	*) case $rc in
	   0|1) ;;
	   2) echo "[$label] (baseline not measured this time)" ;;
	   *) echo "[$label] ERROR (status $rc)"; bad=1 ;;
	   esac ;;
	esac
}

if [ "$nodes" -eq 2 ]; then
	weights=0:3,1:1 expect=75,25 on_last=0,100
else
	weights=0:3,1:1,2:3,3:1 expect=37.5,12.5,37.5,12.5 on_last=0,0,0,100
fi

for bal in 0 1; do
	echo "$bal" > /proc/sys/kernel/numa_balancing
	echo "== NUMA balancing $bal"
	run "glibc" "" -- large
	run "numashim" "$lib" -- --check large
	run "numashim weights $weights" "$lib" NUMASHIM_INTERLEAVE_WEIGHTS=$weights -- \
		--expect "$expect" --mode preferred large
	run "numashim weights $weights, 6 MiB blocks" "$lib" NUMASHIM_INTERLEAVE_MIN=4M \
		NUMASHIM_INTERLEAVE_WEIGHTS=$weights -- --expect "$expect" blocks
	run "glibc" "" -- mixed
	echo "[numactl --interleave=all] $(numactl --interleave=all "$bin" mixed 2>&1 | tr '\n' ' ')"
	run "numashim" "$lib" -- --min-local 99 mixed
done
echo 0 > /proc/sys/kernel/numa_balancing
echo "== NUMA balancing 0"
run "glibc" "" -- shared
run "numashim" "$lib" -- --check shared
run "glibc" "" -- --check keep
run "numashim" "$lib" -- --check keep
# Pages the kernel faults in inside mmap (MAP_POPULATE, MAP_LOCKED, any
# mapping after mlockall(MCL_FUTURE), jemalloc's included) are placed too; a mapping placed in weighted runs (one VMA each) can still
# grow by mremap.
# One node named for large blocks (a memory tier): all of them there.
run "numashim large blocks on the last node" "$lib" NUMASHIM_INTERLEAVE_NODES=$((nodes - 1)) -- \
	--expect "$on_last" large
# Weighted runs of a strict plan are bound strictly (MPOL_BIND), with the
# same shares; no other case tells the two apart.
run "numashim bind, weights $weights" "$lib" NUMASHIM_POLICY=bind:0-$((nodes - 1)) \
	NUMASHIM_INTERLEAVE_WEIGHTS=$weights -- --expect "$expect" --mode bind large
# A plan of one node has no large set: its large mappings go where its
# heap goes (they were left to first touch, on node 0 here).
run "glibc" "" -- mapped
for one in NUMASHIM_POLICY=bind:$((nodes - 1)) NUMASHIM_POLICY=preferred:$((nodes - 1)) \
	NUMASHIM_NODES=$((nodes - 1)); do
	run "numashim $one" "$lib" "$one" -- --expect "$on_last" mapped
done
for sc in populate locked mlockall mlockall-malloc; do
	run "glibc" "" -- "$sc"
	run "numashim" "$lib" -- --check "$sc"
done
# Not placed (README): shmat faults a segment in under mlockall(MCL_FUTURE).
run "numashim, printed" "$lib" -- mlockall-shm
run "numashim weights $weights" "$lib" NUMASHIM_INTERLEAVE_WEIGHTS=$weights -- mremap
# A reservation committed piece by piece with MAP_FIXED (a JVM's heap):
# the commits are placed as the reservation was (they were left to first
# touch, every page on node 0).
run "glibc" "" -- reserve
run "numashim" "$lib" -- --check reserve
run "glibc" "" -- spread
run "numashim spread" "$lib" NUMASHIM_THREADS=spread -- --check spread
[ $bad -eq 0 ] && echo "guest-large: all numashim checks passed" ||
	echo "guest-large: a numashim check FAILED"
exit $bad
