#!/bin/sh
# guest-placement.sh: inside a vmrun guest, run every placement scenario
# with kernel NUMA balancing on and off, each under glibc (baseline),
# plain jemalloc (second baseline, if $JEMALLOC_SO exists) and numashim
# ($NUMASHIM_LIB, asserted >= $NUMASHIM_VM_MIN_LOCAL %, default 99), and
# print a side-by-side table (also written to tests/vm/placement-TOPO.txt).
#
# With balancing on, each program keeps rewriting its blocks for
# $NUMASHIM_VM_SETTLE_MS ms (default 3000) before measuring, so the
# kernel's scanner has time to migrate pages; with it off nothing would
# move, so no time is spent there.
#
# Usage: guest-placement.sh [SCENARIO...]  (default: pinned churn migrate handoff)
# Exit: 0 all asserted runs passed; 1 a numashim run failed its threshold or
#       any run failed; 77 NUMASHIM_LIB unset (baselines only, nothing asserted).
set -eu

topo=${NUMASHIM_VM_TOPOLOGY:?not inside a vmrun guest}
bin=${NUMASHIM_BUILDDIR:-.}/tests/vm
here=$(dirname "$0")
min=${NUMASHIM_VM_MIN_LOCAL:-99}
settle=${NUMASHIM_VM_SETTLE_MS:-3000}
scenarios=${*:-pinned churn migrate handoff}
table=$bin/placement-$topo.txt
rows=$(mktemp)
bad=0

# The guest must be the topology we think it is before its figures mean anything.
sh "$here/guest-topology.sh" || { echo "guest-placement: topology check failed"; exit 1; }

allocs="glibc"
[ -n "${JEMALLOC_SO-}" ] && [ -e "$JEMALLOC_SO" ] && allocs="$allocs jemalloc"
if [ -n "${NUMASHIM_LIB-}" ]; then
	[ -e "$NUMASHIM_LIB" ] || { echo "guest-placement: NUMASHIM_LIB=$NUMASHIM_LIB: no such file"; exit 1; }
	allocs="$allocs numashim"
fi

# run SCENARIO ALLOC BALANCING: prints the program's lines, leaves the
# figure ("99.8" / "skip" / "ERR") in $fig; failures set bad=1.
run() {
	sc=$1 al=$2 bal=$3
	case $al in
	glibc)    pre= ;;
	jemalloc) pre=$JEMALLOC_SO ;;
	numashim) pre=$NUMASHIM_LIB ;;
	esac
	set -- "$bin/place_$sc"
	if [ "$bal" = on ]; then set -- "$@" --settle "$settle"; fi
	if [ "$al" = numashim ]; then set -- "$@" --min-local "$min"; fi
	out=$(LD_PRELOAD=$pre "$@" 2>&1) && rc=0 || rc=$?
	printf '%s\n' "$out" | sed "s/^/[balancing $bal, $al] /"
	fig=$(printf '%s\n' "$out" | sed -n 's/^[a-z]*: local \([0-9.]*\)%.*/\1/p' | head -n1)
	case $rc in
	0)  ;;
	77) fig=skip ;;
	1)  fig="$fig FAIL"; bad=1 ;;
	*)  fig="ERR($rc)"; bad=1 ;;
	esac
	[ -n "$fig" ] || { fig="ERR"; bad=1; }
}

for bal in on off; do
	case $bal in on) echo 1 ;; off) echo 0 ;; esac >/proc/sys/kernel/numa_balancing
	for sc in $scenarios; do
		line=$(printf '%-9s %-9s' "$sc" "$bal")
		for a in glibc jemalloc numashim; do
			case " $allocs " in
			*" $a "*) run "$sc" "$a" "$bal"; line=$(printf '%s %-10s' "$line" "$fig") ;;
			*)        line=$(printf '%s %-10s' "$line" "-") ;;
			esac
		done
		echo "$line" >>"$rows"
	done
done

{
	echo "placement in $topo: % of pages on the allocating thread's node" \
		"(numashim asserted >= $min %)"
	printf '%-9s %-9s %-10s %-10s %-10s\n' scenario balancing glibc jemalloc numashim
	cat "$rows"
} | tee "$table"
rm -f "$rows"

if [ $bad != 0 ]; then
	echo "guest-placement: FAILED (see the lines marked FAIL/ERR above)"
	exit 1
fi
case " $allocs " in
*" numashim "*) exit 0 ;;
*) echo "guest-placement: NUMASHIM_LIB unset: baselines only, nothing asserted"; exit 77 ;;
esac
