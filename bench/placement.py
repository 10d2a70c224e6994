"""placement: the tests/vm placement scenarios as a table (bench/run --placement).

Builds the tests/vm/place_*.c programs, boots one guest per topology with
tests/vm/vmrun, and runs bench/placement-guest.sh there: every scenario
under glibc, jemalloc, `numactl --interleave=all`, `numactl --localalloc`,
numashim (local policy) and numashim with NUMASHIM_POLICY=interleave.
Placement is exact in the guest (move_pages); its timings mean nothing (TCG).

Figures per cell: local % (pages on the allocating thread's target node)
and the interleave balance: the smallest node's share of the pages divided
by the largest's (1.00 = evenly spread, 0.00 = all on one node). For
place_large's modes: `large` (one thread mallocs and touches 256 MiB) has
only a balance; `mixed` (a thread on node 0 mallocs 256 MiB and 16 Ki small
blocks) gives the small blocks' local % and the big buffer's balance."""
import csv
import glob
import os
import re
import subprocess

CONFIGS = [("glibc", "glibc"), ("jemalloc", "jemalloc"),
           ("interleave", "numactl --interleave=all"), ("localalloc", "numactl --localalloc"),
           ("numashim", "numashim"), ("numashim-il", "numashim NUMASHIM_POLICY=interleave")]
SETTLE_MS = 3000   # with balancing on, as tests/vm/guest-placement.sh does
LOCAL = re.compile(r"local ([0-9.]+) ?%")
SHARES = re.compile(r"shares ([0-9./]+)")
PAGES = re.compile(r"\((?:pages|blocks) (\d+)")
MODES = {"large": ["large", "mixed"]}   # place_large: one run per mode


def build(top, outdir, say):
    src = os.path.join(top, "tests", "vm")
    progs = sorted(os.path.basename(p)[len("place_"):-2]
                   for p in glob.glob(os.path.join(src, "place_*.c")))
    out = os.path.join(outdir, "bin")
    os.makedirs(out, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    for s in progs:
        dst = os.path.join(out, "place_" + s)
        srcs = [os.path.join(src, f"place_{s}.c")]
        with open(srcs[0]) as f:
            if "tests/vm/place.h" in f.read():
                srcs.append(os.path.join(src, "place.c"))
        if os.path.exists(dst) and os.path.getmtime(dst) > max(map(os.path.getmtime, srcs)):
            continue
        say(f"building place_{s}")
        subprocess.run([cc, "-O2", "-g", "-std=gnu11", "-D_GNU_SOURCE", "-pthread",
                        "-I", top, "-o", dst, *srcs, "-lnuma"], check=True)
    return out, [p for p in progs if p not in MODES] + [
        f"{p}:{m}" for p in progs if p in MODES for m in MODES[p]]


def balance(shares):
    return min(shares) / max(shares) if shares and max(shares) > 0 else 0.0


def run(top, outdir, topologies, envs, say, progress, progress_done):
    vmrun = os.path.join(top, "tests", "vm", "vmrun")
    if not os.access(vmrun, os.X_OK):
        return ["placement: tests/vm/vmrun not found: no placement figures"]
    shim = envs.get("numashim", (None, None))[1]
    je = envs.get("jemalloc", (None, None))[1]
    if not shim or not je:
        return ["placement: needs numashim and jemalloc"]
    bindir, progs = build(top, outdir, say)
    if not progs:
        return ["placement: no tests/vm/place_*.c programs"]
    guest = os.path.join(os.path.dirname(os.path.abspath(__file__)), "placement-guest.sh")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NUMASHIM_") and k != "LD_PRELOAD"}
    res, info, problems = {}, {}, []
    for topo in topologies:
        name, _, bal = topo.partition("/")
        cmd = [vmrun, name, "--timeout", "1800"]
        if bal:
            cmd += ["--balancing", bal.lstrip("b")]
        cmd += ["--", "/bin/bash", guest, bindir, shim, je, str(SETTLE_MS), *progs]
        say(f"placement: booting the {name} guest (QEMU TCG; a few minutes)")
        p = subprocess.Popen(cmd, cwd=outdir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        n = 0
        for line in p.stdout:
            if line.startswith("@@INFO"):
                info[topo] = line[7:].strip()
            if not line.startswith("@@PLACE"):
                continue
            head, _, figure = line[8:].partition(" | ")
            bal, config, scenario, rc = head.split()
            loc, sh, pg = LOCAL.search(figure), SHARES.search(figure), PAGES.search(figure)
            n += 1
            progress(f"[placement {topo}] {n:2d}/{2 * len(progs) * len(CONFIGS)} "
                     f"balancing {bal:<3} {scenario:<8} {config:<11} {figure.strip()[:56]}")
            if rc == "0" and (loc or sh):
                res[(topo, bal, scenario, config)] = (
                    float(loc.group(1)) if loc else None, int(pg.group(1)) if pg else 0,
                    [float(x) for x in sh.group(1).split("/")] if sh else [], int(rc))
            else:
                res[(topo, bal, scenario, config)] = None
                problems.append(f"{topo} balancing {bal} {scenario} {config}: exit {rc}: "
                                f"{figure.strip()}")
        err = p.stderr.read()
        rc = p.wait()
        progress_done()
        if rc != 0:
            problems.append(f"{topo}: vmrun exit {rc}: " + " / ".join(err.strip().splitlines()[-4:]))
    return [write(outdir, topologies, progs, res, info, problems)]


def write(outdir, topologies, progs, res, info, problems):
    names = [c[0] for c in CONFIGS]
    out = ["placement in QEMU guests (tests/vm scenarios; cell: local % / interleave balance "
           "= min node share / max node share; balancing: kernel NUMA balancing, on with "
           f"{SETTLE_MS} ms of settling)",
           "  columns: " + "; ".join(f"{n} = {w}" for n, w in CONFIGS),
           "  " + "guest bal. scenario".ljust(22) + "".join(n.rjust(13) for n in names)]
    with open(os.path.join(outdir, "placement.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["topology", "balancing", "scenario", "config", "local_pct", "pages",
                     "node_shares", "balance", "exit"])
        for topo, bal, s in [(t, b, s) for t in topologies for b in ("on", "off")
                             for s in progs]:
            cells = []
            for c in names:
                r = res.get((topo, bal, s, c))
                if r is None:
                    cells.append("-")
                    continue
                cells.append(("-" if r[0] is None else f"{r[0]:.1f}") + "/"
                             + (f"{balance(r[2]):.2f}" if r[2] else "-"))
                wr.writerow([topo, bal, s.split(":")[-1], c, "" if r[0] is None else r[0],
                             r[1], "/".join(map(str, r[2])),
                             f"{balance(r[2]):.3f}" if r[2] else "", r[3]])
            out.append("  " + f"{topo} {bal:<3} {s.split(':')[-1]}".ljust(22)
                       + "".join(x.rjust(13) for x in cells))
    for topo, i in info.items():
        out.append(f"  {topo} guest: {i}")
    out += [f"  problem: {p}" for p in problems]
    with open(os.path.join(outdir, "placement.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
    return "\n".join(out)
