#!/usr/bin/env python3
"""The stats segment seen from outside, decoded independently of the C
reader (struct offsets from stats/layout.h): a program with known
allocations under NUMASHIM_FAKE_NODES=2 must show them per node; the
segment is 0600, ours, exactly sized, unlinked at exit; a forked child gets
its own; NUMASHIM_STATS=off makes none."""
import glob, os, struct, subprocess, sys

LIB = os.environ["NUMASHIM_LIB"]
PROG = os.path.join(os.environ.get("NUMASHIM_BUILDDIR", "."), "tests/integration/stats_prog")
HDR, NODE, SIZE = 720, 192, 720 + 64 * 192
BLOCKS, BSIZE = 20000, 1000
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def segment_of(pid):
    found = glob.glob("/dev/shm/numashim.%d.*" % pid)
    return found[0] if len(found) == 1 else None


def decode(path):
    data = open(path, "rb").read()
    (magic, ver, hs, size, seq, pid, count, start, upd, updates, mask,
     active, fake) = struct.unpack_from("<QIIQQiIQQQQII", data, 0)
    h = dict(magic=magic, version=ver, header_size=hs, size=size, seq=seq,
             pid=pid, node_count=count, updates=updates, active=active,
             fake=fake, bytes=len(data),
             comm=data[336:352].split(b"\0")[0].decode(),
             policy=data[352:480].split(b"\0")[0].decode())
    nodes = []
    for n in range(min(count, 64)):
        v = struct.unpack_from("<24Q", data, HDR + n * NODE)
        nodes.append(dict(live_bytes=v[0:3], live_count=v[3:6], allocs=v[6],
                          frees=v[7], remote=v[8], interleaved=v[9], sampled=v[10], found=v[11],
                          fallbacks=v[12], threads=v[14]))
    return h, nodes


def check_balance(what, node):
    """allocs and frees come from the same merged snapshot as the live
    counts: what was allocated and not freed is what is live (small and
    large; 2 of slack for the large set's split over the nodes). Most of
    the churn stays in the thread caches, which jemalloc counts as live,
    so frees are few: the balance is the check, not their number."""
    live = node["live_count"][0] + node["live_count"][1]
    held = node["allocs"] - node["frees"]
    check(abs(held - live) <= 2 and node["frees"] > 0,
          "%s: %d allocs - %d frees = %d, %d live blocks" %
          (what, node["allocs"], node["frees"], held, live))


def start(extra_env, *args, umask=None):
    env = dict(os.environ, LD_PRELOAD=LIB, NUMASHIM_FAKE_NODES="2", **extra_env)
    pre = (lambda: os.umask(umask)) if umask is not None else None
    p = subprocess.Popen([PROG, str(BLOCKS), str(BSIZE), *args], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         preexec_fn=pre)
    return p


def known_allocations():
    p = start({})
    line = p.stdout.readline().split()
    pid = int(line[1])
    path = segment_of(pid)
    check(path is not None, "a segment exists for pid %d: %s" % (pid, path))
    if path:
        st = os.stat(path)
        check(st.st_mode & 0o777 == 0o600, "mode 0600 (%o)" % (st.st_mode & 0o777))
        check(st.st_uid == os.getuid(), "owned by us")
        h, nodes = decode(path)
        check(h["magic"] == 0x314D485341554E4E and h["version"] == 1 and
              h["header_size"] == HDR and h["size"] == SIZE == h["bytes"],
              "magic, version, header_size, size (%d bytes)" % h["bytes"])
        check(h["pid"] == pid and h["comm"] == "stats_prog" and h["seq"] % 2 == 0,
              "pid %d, comm %s, seq even (%d)" % (h["pid"], h["comm"], h["seq"]))
        check(h["active"] == 1 and h["fake"] == 2 and h["node_count"] == 2,
              "active, 2 emulated nodes: %s" % h["policy"])
        for n, node in enumerate(nodes):
            cnt, byt = node["live_count"][0], node["live_bytes"][0]
            # BLOCKS blocks of 1000 bytes (size class 1024) per node, plus
            # the few the thread machinery keeps.
            # jemalloc counts per arena what left it (blocks in thread
            # caches included): within 1 % of what the program holds.
            check(BLOCKS * 0.99 <= cnt <= BLOCKS * 1.02,
                  "node %d: %d live small blocks (allocated %d)" % (n, cnt, BLOCKS))
            check(BLOCKS * 1024 * 0.99 <= byt <= BLOCKS * 1024 * 1.05,
                  "node %d: %.1f MiB live small (allocated %.1f MiB in 1 KiB classes)"
                  % (n, byt / 2**20, BLOCKS * 1024 / 2**20))
            check(node["allocs"] >= BLOCKS and node["frees"] <= node["allocs"],
                  "node %d: %d allocs, %d frees" % (n, node["allocs"], node["frees"]))
            check_balance("node %d" % n, node)
            check(node["sampled"] > 0 and node["found"] == node["sampled"],
                  "node %d: %d pages sampled, %d found on the node"
                  % (n, node["sampled"], node["found"]))
    p.stdin.close()
    p.wait()
    check(path is not None and not os.path.exists(path), "segment unlinked at exit")


def forked():
    p = start({}, "fork")
    pids = {}
    for _ in range(2):
        kind, pid = p.stdout.readline().split()
        pids[kind] = int(pid)
    parent, child = segment_of(pids["ready"]), segment_of(pids["child"])
    check(parent is not None and child is not None and parent != child,
          "parent and child each have a segment: %s %s" % (parent, child))
    if parent and child:
        hp, np_ = decode(parent)
        hc, nc = decode(child)
        check(hp["pid"] == pids["ready"] and hc["pid"] == pids["child"],
              "each segment names its own pid")
        total = lambda nodes: sum(n["live_count"][0] for n in nodes)
        check(total(nc) >= (total(np_) + BLOCKS) * 0.99,
              "child counts the heap it inherited plus its own blocks (%d >= %d)"
              % (total(nc), total(np_) + BLOCKS))
    p.stdin.close()
    p.wait()
    check(not glob.glob("/dev/shm/numashim.%d.*" % pids["ready"]) and
          not glob.glob("/dev/shm/numashim.%d.*" % pids["child"]),
          "both unlinked at exit")


def remote_frees():
    """A thread on CPU 1 frees 1000 of the blocks CPU 0's thread kept: node
    0 must count them as remote frees (they are counted per thread and
    added in batches; the thread's end adds the rest), node 1 none."""
    p = start({}, "remote", "1000")
    pid = int(p.stdout.readline().split()[1])
    path = segment_of(pid)
    check(path is not None, "remote: a segment exists for pid %d" % pid)
    if path:
        h, nodes = decode(path)
        r = [n["remote"] for n in nodes]
        check(h["updates"] > 0 and 1000 <= r[0] <= 1010 and r[1] <= 10,
              "remote: node 0 counts the 1000 remote frees, node 1 none: %s "
              "(%d updates)" % (r, h["updates"]))
    p.stdin.close()
    p.wait()


def passing_through():
    """Passing through (NUMASHIM_POLICY=off), the segment still gets the
    process's figures: one node, every thread's blocks. Its first refresh
    is also where jemalloc's ctl module starts then (shim/je.c). Only the
    program's threads allocate after the start ("idle-main"): theirs is
    the activity that refreshes it."""
    p = start({"NUMASHIM_POLICY": "off"}, "idle-main")
    pid = int(p.stdout.readline().split()[1])
    path = segment_of(pid)
    check(path is not None, "passing through: a segment exists for pid %d" % pid)
    if path:
        h, nodes = decode(path)
        want = BLOCKS * min(os.sysconf("SC_NPROCESSORS_ONLN"), 64)  # threads
        cnt = nodes[0]["live_count"][0] if nodes else 0
        check(h["active"] == 0 and h["updates"] > 0 and
              want * 0.99 <= cnt <= want * 1.02,
              "passing through: %d updates, %d live small blocks on node 0 "
              "(allocated %d)" % (h["updates"], cnt, want))
        if nodes:
            check_balance("passing through, node 0", nodes[0])
    p.stdin.close()
    p.wait()


def decoded(what, env, *args):
    """Runs stats_prog, decodes its segment once it is ready; (h, nodes)
    or None (a failed check) when it made none."""
    p = start(env, *args)
    pid = int(p.stdout.readline().split()[1])
    path = segment_of(pid)
    check(path is not None, "%s: a segment exists for pid %d" % (what, pid))
    seg = decode(path) if path else None
    p.stdin.close()
    p.wait()
    return seg


def interleave_weighted():
    """NUMASHIM_POLICY=interleave with weights for large blocks: the small
    blocks' set is interleaved evenly by the kernel, so its live blocks
    count half per node, not 3:1 (the weights were applied to every set)."""
    seg = decoded("interleave, weights", {"NUMASHIM_POLICY": "interleave",
                                          "NUMASHIM_INTERLEAVE_WEIGHTS": "0:3,1:1"})
    if seg:
        h, nodes = seg
        cnt = [n["live_count"][0] for n in nodes]
        want = BLOCKS * len(nodes)  # one thread per CPU, one CPU per node
        check(len(cnt) == 2 and all(want / 2 * 0.98 <= c <= want / 2 * 1.03 for c in cnt),
              "interleave, weights 0:3,1:1: live small blocks per node %s, "
              "expected about %d each (%s)" % (cnt, want / 2, h["policy"]))
        # Every set is interleaved: its live bytes all count as such.
        inter = [n["interleaved"] for n in nodes]
        small = [n["live_bytes"][0] for n in nodes]
        check(len(inter) == 2 and all(s * 0.99 <= i for s, i in zip(small, inter)) and
              sum(inter) <= sum(sum(n["live_bytes"]) for n in nodes),
              "interleave: interleaved bytes per node %s, live small bytes %s"
              % (inter, small))


def bind_is_strict():
    """bind:NODES binds strictly (MPOL_BIND, its large blocks' runs too),
    and the segment says so (it said "advisory")."""
    seg = decoded("bind:0-1", {"NUMASHIM_POLICY": "bind:0-1"})
    if seg:
        check(seg[0]["policy"].startswith("bind nodes 0-1 strict"),
              "bind:0-1: the segment's policy reads %r" % seg[0]["policy"])


def thread_exit_policy():
    """Threads that set or clear a memory policy in a key destructor, after
    numashim's exit work: none may stay counted (one was bound again and
    its slot leaked, or its slot was given back twice)."""
    seg = decoded("dtor", {}, "dtor")
    if seg:
        threads = [n["threads"] for n in seg[1]]
        check(sum(threads) == 1, "dtor: threads bound per node %s, expected the "
              "main thread's alone" % threads)


def exit_moved():
    """Threads that move to another node just before they end, their
    activity callback run by the frees of their refused batch there: none
    may stay counted. One was rebound inside its own exit work: its new
    slot was never given back and its old one given back twice (node 1
    counted about half of the 50 threads, main's node 0 none)."""
    seg = decoded("exit-moved", {}, "exit-moved")
    if seg:
        threads = [n["threads"] for n in seg[1]]
        check(threads[:2] == [1, 0], "exit-moved: threads bound per node %s, "
              "expected the main thread's alone, on node 0" % threads)


def umask_kept_out():
    """A umask that takes the owner's write bit (0277) still makes a 0600
    segment: the reader trusts no other mode (it was 0400, refused)."""
    p = start({}, umask=0o277)
    pid = int(p.stdout.readline().split()[1])
    path = segment_of(pid)
    mode = oct(os.stat(path).st_mode & 0o777) if path else None
    check(mode == "0o600", "umask 0277: the segment's mode is %s, expected 0o600" % mode)
    p.stdin.close()
    p.wait()


def disabled():
    p = start({"NUMASHIM_STATS": "off"})
    pid = int(p.stdout.readline().split()[1])
    check(segment_of(pid) is None, "NUMASHIM_STATS=off: no segment")
    p.stdin.close()
    p.wait()


if os.cpu_count() < 2:
    print("SKIP: the emulated 2-node topology needs 2 CPUs")
    sys.exit(77)
known_allocations()
forked()
remote_frees()
passing_through()
interleave_weighted()
bind_is_strict()
thread_exit_policy()
exit_moved()
umask_kept_out()
disabled()
sys.exit(1 if failures else 0)
