#!/bin/sh
# start-rss.sh: what a short-lived process pays at start, per allocator:
# minor page faults and peak RSS of a trivial program (one malloc), and
# the automatic arena count jemalloc took, numashim active and passing
# through. Meant for a many-CPU guest, where jemalloc's default arena
# count (4 per CPU) is large:
#
#   tests/vm/vmrun wide --timeout 900 -- sh bench/start-rss.sh [LIB...]
#
# LIB: more numashim builds to compare (e.g. one of an older commit, made
# in a git worktree). Run from the build tree; GNU time is needed. Page
# placement and counts are exact in a TCG guest; timings there are not, so
# none are printed.
set -eu
[ -x /usr/bin/time ] || { echo "start-rss: needs GNU time (apt-get install time)"; exit 1; }
bin=bench/results/bin
mkdir -p "$bin"
prog=$(sh "$(dirname "$0")/one-malloc.sh")
lib=$PWD/shim/.libs/libnumashim.so
je=$(ldconfig -p 2>/dev/null | sed -n 's/.*libjemalloc.so.2 .*=> //p' | head -n 1)
ncpu=$(nproc)
echo "nproc $ncpu, nodes $(cat /sys/devices/system/node/online)," \
	"THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo none)"

one() {  # label settings...: of 5 runs, the median fault count and the
	label=$1  # median peak RSS, each on its own (the run of the median RSS
	shift     # need not have the median count)
	n=$(env "$@" MALLOC_CONF="${conf:+$conf,}stats_print:true" "$prog" 2>&1 |
		sed -n 's/^  opt.narenas: //p')
	runs=$(for i in 1 2 3 4 5; do
		env "$@" ${conf:+MALLOC_CONF=$conf} /usr/bin/time -f "%R %M" "$prog" 2>&1 >/dev/null | tail -n 1
	done)
	flt=$(echo "$runs" | awk '{print $1}' | sort -n | sed -n 3p)
	rss=$(echo "$runs" | awk '{print $2}' | sort -n | sed -n 3p)
	printf '  %-34s narenas %-5s faults %-6s peak RSS %6s KiB\n' "$label" "${n:--}" "$flt" "$rss"
}
conf=
one glibc LD_PRELOAD=
[ -n "$je" ] && one jemalloc LD_PRELOAD="$je"
# On a one-node host, numashim passes through; NUMASHIM_FAKE_NODES=2 runs
# its multi-node path.
fake=
[ "$(cat /sys/devices/system/node/online)" = 0 ] && [ "$ncpu" -ge 2 ] &&
	fake=NUMASHIM_FAKE_NODES=2
for l in "$lib" "$@"; do
	tag=numashim
	[ "$l" = "$lib" ] || tag="numashim $(basename "$l")"
	for f in "" $fake; do
		t=$tag${f:+-2n}
		one "$t" LD_PRELOAD="$l" $f
		conf="narenas:$((4 * ncpu))" one "$t, narenas $((4 * ncpu))" LD_PRELOAD="$l" $f
		conf=
	done
	# Passing through (as on a one-node machine), jemalloc keeps its own
	# count, 4 per CPU.
	one "$tag, passing through" LD_PRELOAD="$l" NUMASHIM_POLICY=off
done
