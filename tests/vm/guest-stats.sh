#!/bin/sh
# guest-stats.sh: inside a 2-node vmrun guest, a program with known
# allocations runs under the shim (one pinned thread per CPU = per node);
# `numashim stat --json` must match what it allocated, and agree with
# `numastat -p` on each node's private (heap) memory within 5 %. Then
# `numashim doctor` on this real 2-node kernel.
set -eu
b=${NUMASHIM_BUILDDIR:-.}
lib=${NUMASHIM_LIB:?NUMASHIM_LIB is not set}
blocks=150000 size=1000   # about 146 MiB per node in 1 KiB size classes
# numastat -p has no row for an mmap'ed heap: it lands in "Private" with
# the thread stacks and libraries. With transparent huge pages "always"
# each 8 MiB thread stack becomes nearly all resident, which is noise of
# the environment, not heap: compare with THP off, where the rest is a
# few MiB of libraries and stacks beside ~146 MiB of heap per node.
[ -w /sys/kernel/mm/transparent_hugepage/enabled ] &&
	echo never >/sys/kernel/mm/transparent_hugepage/enabled
fifo=/tmp/stats-fifo.$$
mkfifo "$fifo"
LD_PRELOAD=$lib "$b/tests/integration/stats_prog" $blocks $size <"$fifo" >/tmp/stats-prog.out &
exec 3>"$fifo"   # keeps the program waiting until fd 3 closes
i=0
until grep -q ready /tmp/stats-prog.out 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "guest-stats: program never got ready"; exit 1; }
	sleep 0.1
done
pid=$(awk '/ready/ {print $2}' /tmp/stats-prog.out)
"$b/tools/numashim" stat "$pid"
"$b/tools/numashim" stat --json "$pid" >/tmp/stats.json
numastat -p "$pid" | tee /tmp/numastat.txt
rc=0
python3 - "$blocks" <<'PY' || rc=1
import json, sys
blocks = int(sys.argv[1])
seg = json.load(open("/tmp/stats.json"))[0]
rows = {}
for line in open("/tmp/numastat.txt"):
    f = line.split()
    if f and f[0] in ("Private", "Heap", "Total"):
        rows[f[0]] = [float(x) for x in f[1:]]
bad = 0
for n in seg["nodes"][:2]:
    i = n["node"]
    lb = n["live_bytes"]
    live = (lb["small"] + lb["large"] + lb["mmap"]) / 2**20
    ours = (n["resident_bytes"] or 0) / 2**20
    theirs = rows["Private"][i] + rows["Heap"][i]
    ok = abs(ours - theirs) <= 0.05 * theirs
    print("node %d: numashim resident %.1f MiB (live %.1f), numastat "
          "private+heap %.1f MiB: %s" % (i, ours, live, theirs,
                                       "within 5 %" if ok else "DIFFERENT"))
    cnt = n["live_count"]["small"]
    ok2 = blocks * 0.99 <= cnt <= blocks * 1.02
    print("node %d: %d live blocks, the program keeps %d: %s"
          % (i, cnt, blocks, "ok" if ok2 else "WRONG"))
    bad += (not ok) + (not ok2)
sys.exit(1 if bad else 0)
PY
# numashim doctor on a real 2-node kernel: the topology, the program seen
# under numashim; and a process without the shim whose 256 MiB one thread
# touched on node 0 while it may run on both nodes: the first-touch case.
"$b/tools/numashim" doctor "$pid" || true
"$b/tools/numashim" doctor --json "$pid" >/tmp/doctor.json || true
python3 - <<'PY' >/tmp/first-touch.out &
import mmap, os, sys, time
cpus = os.sched_getaffinity(0)
os.sched_setaffinity(0, {min(cpus)})   # node 0's first CPU
m = mmap.mmap(-1, 256 << 20)
for off in range(0, len(m), 4096):
    m[off] = 1
os.sched_setaffinity(0, cpus)          # then free to run anywhere
print("ready", os.getpid(), flush=True)
time.sleep(60)
PY
toucher=$!
i=0
until grep -q ready /tmp/first-touch.out 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "guest-stats: the toucher never got ready"; rc=1; break; }
	sleep 0.1
done
"$b/tools/numashim" doctor "$toucher" || true
"$b/tools/numashim" doctor --json "$toucher" >/tmp/doctor-ft.json || true
kill "$toucher" 2>/dev/null || true
# A process pinned to node 1's CPU with no cpuset of its own: its memory
# may still come from node 0 (Mems_allowed_list 0-1), noted as "pin both".
python3 -c 'import os, time
os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
print("ready", flush=True)
time.sleep(60)' >/tmp/pinned.out &
pinned=$!
i=0
until grep -q ready /tmp/pinned.out 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "guest-stats: the pinned process never got ready"; rc=1; break; }
	sleep 0.1
done
grep Mems_allowed_list "/proc/$pinned/status" || true
"$b/tools/numashim" doctor "$pinned" || true
"$b/tools/numashim" doctor --json "$pinned" >/tmp/doctor-pin.json || true
kill "$pinned" 2>/dev/null || true
python3 - "$pid" "$toucher" "$pinned" <<'PY' || rc=1
import json, re, sys
pid, toucher, pinned = sys.argv[1], sys.argv[2], sys.argv[3]
bad = 0
def find(doc, check, level, rx):
    return any(f["check"] == check and f["level"] == level and
               re.search(rx, f["text"]) for f in doc["findings"])
d = json.load(open("/tmp/doctor.json"))
for what, ok in [
        ("doctor: 2 nodes", d["nodes"] == 2),
        ("doctor: topology ok, 2 nodes with memory",
         find(d, "topology", "ok", r"^2 nodes, 2 with memory")),
        ("doctor: the program runs under numashim",
         any(f["check"] == "pid " + pid and "runs under numashim (local" in f["text"]
             for f in d["findings"]))]:
    print("%s: %s" % (what, "ok" if ok else "WRONG"))
    bad += not ok
d = json.load(open("/tmp/doctor-ft.json"))
ok = find(d, "pid " + toucher, "warn",
          r"of its .* MiB is on node 0 while its threads may run on nodes 0,1")
print("doctor: first touch on node 0 flagged: %s" % ("ok" if ok else "WRONG"))
bad += not ok
d = json.load(open("/tmp/doctor-pin.json"))
ok = find(d, "pid " + pinned, "info",
          r"may run only on node\(s\) 1, but may take memory from node\(s\) 0 too")
print("doctor: CPUs pinned to node 1, memory free on node 0 noted: %s" % ("ok" if ok else "WRONG"))
bad += not ok
sys.exit(1 if bad else 0)
PY
exec 3>&-
wait
rm -f "$fifo"
# On this real 2-node kernel, a C++ program's jemalloc starts before the
# shim's constructor (libstdc++ allocates first): the shim decides inside
# jemalloc's start and still gives it one automatic arena per CPU.
n=$(MALLOC_CONF=stats_print:true LD_PRELOAD=$lib "$b/tests/integration/cxx" shim 2>&1 >/dev/null |
	sed -n 's/^  opt.narenas: //p')
if [ "$n" = "$(nproc)" ]; then
	echo "C++ program: $n automatic arenas, one per CPU: ok"
else
	echo "C++ program: '$n' automatic arenas, expected $(nproc): WRONG"; rc=1
fi
[ $rc -eq 0 ] && echo "guest-stats: numashim stat agrees with numastat and the program; doctor sees the topology, the program, the first-touch case and a pinned process's cpuset; jemalloc's arenas are one per CPU" ||
	echo "guest-stats: FAILED"
exit $rc
