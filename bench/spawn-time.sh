#!/bin/sh
# spawn-time.sh: a trivial program's start, from posix_spawn to its exit,
# per allocator: glibc, plain jemalloc, numashim (with and without its
# stats segment) and, on a one-node host with 2 CPUs or more, numashim
# under 2 emulated nodes. bench/history/2026-11-24.md section 8 quotes it.
#
#   bench/spawn-time.sh [LIB...]
#
# LIB: more numashim builds to compare (e.g. one of an older commit, made
# in a git worktree). Run from the build tree. Wall time on a shared host
# varies: compare only figures of one run, whose rounds interleave the
# allocators.
set -eu
bin=bench/results/bin
mkdir -p "$bin"
prog=$(sh "$(dirname "$0")/one-malloc.sh")
src=$(dirname "$0")/spawn_time.c
if [ ! -x "$bin/spawn_time" ] || [ "$src" -nt "$bin/spawn_time" ]; then
	cc -O2 -Wall -o "$bin/spawn_time" "$src"
fi
lib=$PWD/shim/.libs/libnumashim.so
je=$(ldconfig -p 2>/dev/null | sed -n 's/.*libjemalloc.so.2 .*=> //p' | head -n 1)
confs="-${je:+,$je},$lib,NUMASHIM_STATS=off@$lib"
[ "$(cat /sys/devices/system/node/online)" = 0 ] && [ "$(nproc)" -ge 2 ] &&
	confs="$confs,NUMASHIM_FAKE_NODES=2@$lib"
for l in "$@"; do
	confs="$confs,$l"
done
echo "nproc $(nproc), nodes $(cat /sys/devices/system/node/online); us per process (- is glibc):"
"$bin/spawn_time" -- "$confs" "$prog"
