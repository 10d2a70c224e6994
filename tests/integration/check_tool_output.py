#!/usr/bin/env python3
"""Checks the outputs of `numashim stat` for the segment mkseg writes with
KIND valid (the numbers of mkseg.c's fill_valid).

    check_tool_output.py table|json|prom FILE PID [PID...]
    check_tool_output.py wide-table|wide-json FILE PID
    check_tool_output.py rounding-table|rounding-json FILE PID

Each PID must appear with exactly those numbers (wide-*: KIND wide, the
numbers in WIDE; rounding-*: KIND rounding, ROUNDING); prints one "ok"/"FAIL" line per check and exits 1 when a
check failed."""
import json
import re
import sys

MiB = 1 << 20
# Per node 0, node 1 and the total, as the table shows them.
NODES = {
    0: dict(small=10 * MiB, large=3 * MiB, mmap=64 * MiB,
            count=dict(small=1000, large=3, mmap=1), allocs=5000, frees=4000,
            remote_frees=400, interleaved=32 * MiB, sampled=1000, found=930,
            fallback=70, threads=3, local=93.0, remote=7.0,
            level="monitor"),
    1: dict(small=1 * MiB, large=0, mmap=64 * MiB,
            count=dict(small=100, large=0, mmap=1), allocs=700, frees=600,
            remote_frees=150, interleaved=32 * MiB, sampled=200, found=150,
            fallback=50, threads=1, local=75.0, remote=25.0,
            level="critical"),
}
TOTAL = dict(small=11 * MiB, large=3 * MiB, mmap=128 * MiB,
             count=dict(small=1100, large=3, mmap=2), allocs=5700, frees=4600,
             remote_frees=550, interleaved=64 * MiB, sampled=1200, found=1080,
             fallback=120, threads=4, local=90.0, remote=10.0,
             level="investigate")
COMM = 'we"ird\\n?'          # the raw comm's newline made printable
EXE = '/opt/\u00fc tf8 "app"?/bin'  # the invalid byte 0xff made printable
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def check_table(text, pids):
    blocks = text.split("Per-node numashim stats for PID ")[1:]
    check(len(blocks) == len(pids), "table: %d processes shown (%d expected)"
          % (len(blocks), len(pids)))
    for pid in pids:
        block = next((b for b in blocks if b.startswith("%d " % pid)), None)
        check(block is not None, "table: PID %d shown" % pid)
        if block is None:
            continue
        rows = {}
        for line in block.splitlines():
            label, rest = line[:18].strip(), line[18:].split()
            if label and rest:
                rows[label] = rest
        cols = [NODES[0], NODES[1], TOTAL]

        def row(label, f):
            want = [f(c) for c in cols]
            got = rows.get(label)
            check(got == want, "table PID %d: %s = %s (got %s)" % (pid, label, want, got))

        row("Live small (MiB)", lambda c: "%.2f" % (c["small"] / MiB))
        row("Live large (MiB)", lambda c: "%.2f" % (c["large"] / MiB))
        row("Live mmap (MiB)", lambda c: "%.2f" % (c["mmap"] / MiB))
        row("Live blocks", lambda c: str(sum(c["count"].values())))
        row("Arena allocs", lambda c: str(c["allocs"]))
        row("Arena frees", lambda c: str(c["frees"]))
        row("Remote frees", lambda c: str(c["remote_frees"]))
        row("Interleaved (MiB)", lambda c: "%.2f" % (c["interleaved"] / MiB))
        row("Pages sampled", lambda c: str(c["sampled"]))
        row("Pages found", lambda c: str(c["found"]))
        row("Pages fallback", lambda c: str(c["fallback"]))
        # mkseg writes 5 into the segment's reserved migrated_pages: no
        # first-touch corrector writes it, so the tool shows it nowhere.
        check("Pages migrated" not in rows and "migrated" not in block,
              "table PID %d: no pages migrated row" % pid)
        row("Threads", lambda c: str(c["threads"]))
        row("Local pages %", lambda c: "%.2f" % c["local"])
        row("Remote pages %", lambda c: "%.2f" % c["remote"])
        row("Remote level", lambda c: c["level"])
        check("Remote pages: 10.00 % of 1200 sampled: investigate" in block,
              "table PID %d: the summary line names the level" % pid)
        check("(%s)" % COMM in block.splitlines()[0],
              "table PID %d: comm shown cleaned: %s" % (pid, block.splitlines()[0]))


def check_node(obj, c, what):
    want = dict(live_bytes=dict(small=c["small"], large=c["large"], mmap=c["mmap"]),
                live_count=c["count"], allocs=c["allocs"], frees=c["frees"],
                remote_frees=c["remote_frees"], interleaved_bytes=c["interleaved"],
                sampled_pages=c["sampled"], found_pages=c["found"],
                fallback_pages=c["fallback"],
                threads=c["threads"], local_pct=c["local"], remote_pct=c["remote"],
                remote_level=c["level"])
    for k, v in want.items():
        check(obj.get(k) == v, "json %s: %s = %s (got %s)" % (what, k, v, obj.get(k)))
    check("migrated_pages" not in obj, "json %s: no migrated_pages" % what)


def check_json(text, pids):
    doc = json.loads(text)
    check(isinstance(doc, list) and len(doc) == len(pids),
          "json: an array of %d objects" % len(pids))
    for pid in pids:
        p = next((o for o in doc if o.get("pid") == pid), None)
        check(p is not None, "json: pid %d present" % pid)
        if p is None:
            continue
        check(p["comm"] == COMM, "json %d: comm %r" % (pid, p["comm"]))
        check(p["exe"] == EXE, "json %d: exe %r" % (pid, p["exe"]))
        check(p["policy"] == "local nodes 0-1 advisory", "json %d: policy" % pid)
        check(p["active"] is True and p["node_count"] == 2 and p["updates"] == 17,
              "json %d: active, node_count, updates" % pid)
        check(p["mmap"] == dict(placed=2, placed_bytes=128 * MiB, left=dict(
            file=5, fixed=0, hugetlb=0, stack=0, small=11, program_policy=0,
            jvm_numa=0, off=0)), "json %d: mmap %s" % (pid, p["mmap"]))
        check(p["shm"] == dict(placed=1, placed_bytes=8 * MiB, attached=4),
              "json %d: shm" % pid)
        check(p["program_mbind"] == 3 and p["program_set_mempolicy"] == 1,
              "json %d: program's own calls" % pid)
        check([n["node"] for n in p["nodes"]] == [0, 1], "json %d: nodes 0 and 1" % pid)
        for n in p["nodes"]:
            check_node(n, NODES[n["node"]], "%d node %d" % (pid, n["node"]))
        check_node(p["total"], TOTAL, "%d total" % pid)


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def check_prom(text, pids):
    samples, helped, typed, seen = [], set(), {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed[line.split()[2]] = line.split()[3]
        else:
            m = LINE.match(line)
            check(m is not None, "prom: sample line parses: %s" % line[:80])
            if not m:
                continue
            labels = {k: unescape(v) for k, v, _ in LABEL.findall(m.group(2))}
            if m.group(1) not in seen:
                seen.add(m.group(1))
                check(m.group(1) in helped and m.group(1) in typed,
                      "prom: %s has HELP and TYPE before it" % m.group(1))
            samples.append((m.group(1), labels, float(m.group(3))))
    # node_exporter's textfile collector refuses a file with a series twice.
    series = [(n, tuple(sorted(lab.items()))) for n, lab, _ in samples]
    dups = sorted(set(x for x in series if series.count(x) > 1))
    check(not dups, "prom: no duplicate series (%d: %s)" % (len(dups), dups[:2]))

    def get(name, pid, **kw):
        for n, lab, v in samples:
            if n == name and lab.get("pid") == str(pid) and \
               all(lab.get(k) == str(x) for k, x in kw.items()):
                return v
        return None

    check(not any("migrated" in n for n in list(typed) + [s[0] for s in samples]),
          "prom: no numashim_pages_migrated_total")
    for name, t in typed.items():
        check(name.startswith("numashim_"), "prom: %s prefixed numashim_" % name)
        check(name.endswith("_total") == (t == "counter"),
              "prom: %s (%s): _total exactly on counters" % (name, t))
    for pid in pids:
        check(any(lab.get("pid") == str(pid) and lab.get("comm") == COMM
                  for _, lab, _ in samples), "prom %d: pid and comm labels" % pid)
        check(get("numashim_info", pid, exe=EXE, policy="local nodes 0-1 advisory") == 1,
              "prom %d: numashim_info with exe and policy" % pid)
        for k, c in NODES.items():
            for band in ("small", "large", "mmap"):
                check(get("numashim_live_bytes", pid, node=k, band=band) == c[band],
                      "prom %d node %d: live_bytes %s" % (pid, k, band))
                check(get("numashim_live_blocks", pid, node=k, band=band) == c["count"][band],
                      "prom %d node %d: live_blocks %s" % (pid, k, band))
            for metric, key in (("allocs_total", "allocs"), ("frees_total", "frees"),
                                ("remote_frees_total", "remote_frees"),
                                ("interleaved_bytes", "interleaved"),
                                ("pages_sampled_total", "sampled"),
                                ("pages_found_total", "found"),
                                ("pages_fallback_total", "fallback"),
                                ("threads", "threads")):
                check(get("numashim_" + metric, pid, node=k) == c[key],
                      "prom %d node %d: numashim_%s = %s" % (pid, k, metric, c[key]))
            # The seeds' remote-access share, computed as PromQL would.
            rp = get("numashim_pages_fallback_total", pid, node=k) / \
                get("numashim_pages_sampled_total", pid, node=k)
            check(abs(rp * 100 - c["remote"]) < 1e-9,
                  "prom %d node %d: remote page share %.3f" % (pid, k, rp))
        check(get("numashim_mmap_left_total", pid, reason="small") == 11,
              "prom %d: mmap_left_total by reason" % pid)
        check(get("numashim_program_mbind_total", pid) == 3, "prom %d: program mbind" % pid)
        check(get("numashim_shm_attached_total", pid) == 4, "prom %d: shm attached" % pid)


# mkseg's KIND wide: counters of 16 to 20 digits, and sums beyond 2^64-1,
# which stay at 2^64-1 (MAX) and are named in a note / "saturated".
MAX = (1 << 64) - 1
WIDE = {
    "Arena allocs": [str(MAX), "1", str(MAX)],
    "Arena frees": ["1", "9999999999999999", "10000000000000000"],
    "Live small (MiB)": ["%.2f" % (MAX / MiB), "1.00", "%.2f" % (MAX / MiB)],
    "Live blocks": [str(MAX), "101", str(MAX)],
    "Remote frees": ["400", "150", "550"],
}
WIDE_SATURATED = ["live_bytes.small", "live_count.small", "allocs"]


def check_wide_table(text, pids):
    lines = text.splitlines()
    head = next(i for i, l in enumerate(lines) if "Node 0" in l)
    for line in lines[head + 1:]:
        if line.startswith(("Saturated", "Remote pages:")):
            break
        check(len(line[18:].split()) == 3, "wide table: 3 columns apart: %r" % line)
    rows = {l[:18].strip(): l[18:].split() for l in lines}
    for label, want in WIDE.items():
        check(rows.get(label) == want,
              "wide table: %s = %s (got %s)" % (label, want, rows.get(label)))
    note = next((l for l in lines if l.startswith("Saturated")), "")
    check(all(r in note for r in ("Arena allocs", "Live small (MiB)", "Live blocks")) and
          "Arena frees" not in note, "wide table: the note names the saturated rows: %r" % note)


def check_wide_json(text, pids):
    t = json.loads(text)[0]["total"]
    check(t["allocs"] == MAX and t["frees"] == 10000000000000000 and
          t["live_bytes"]["small"] == MAX and t["live_count"]["small"] == MAX and
          t["remote_frees"] == 550,
          "wide json: totals saturate at 2^64-1: %s" % {k: t[k] for k in (
              "allocs", "frees", "live_bytes", "live_count")})
    check(t.get("saturated") == WIDE_SATURATED, "wide json: total's saturated = %s (got %s)"
          % (WIDE_SATURATED, t.get("saturated")))
    for n in json.loads(text)[0]["nodes"]:
        check("saturated" not in n, "wide json: node %d has no saturated" % n["node"])


# mkseg's KIND rounding: remote shares just off the rating's edges, on
# nodes 0-2 and the total, as shown (two decimals) and rated as shown:
# 4.9995 % is "5.00" (monitor, not normal), 20.004 % "20.00" (investigate,
# not critical), 9.9995 % "10.00" (investigate, not monitor).
ROUNDING = [("5.00", "monitor"), ("20.00", "investigate"),
            ("10.00", "investigate"), ("8.24", "monitor")]


def check_rounding_table(text, pids):
    rows = {l[:18].strip(): l[18:].split() for l in text.splitlines()}
    check(rows.get("Remote pages %") == [p for p, _ in ROUNDING],
          "rounding table: Remote pages %% = %s" % rows.get("Remote pages %"))
    check(rows.get("Remote level") == [l for _, l in ROUNDING],
          "rounding table: Remote level = %s, as the shares shown say (%s)"
          % (rows.get("Remote level"), [l for _, l in ROUNDING]))
    check("Remote pages: 8.24 % of 425000 sampled: monitor" in text,
          "rounding table: the summary line")


def check_rounding_json(text, pids):
    p = json.loads(text)[0]
    got = [(n["remote_pct"], n["remote_level"]) for n in p["nodes"] + [p["total"]]]
    want = [(float(v), l) for v, l in ROUNDING]
    check(got == want, "rounding json: remote_pct and remote_level %s (want %s)"
          % (got, want))


def main():
    kind, path, pids = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
    text = open(path, encoding="utf-8").read()
    {"table": check_table, "json": check_json, "prom": check_prom,
     "wide-table": check_wide_table, "wide-json": check_wide_json,
     "rounding-table": check_rounding_table,
     "rounding-json": check_rounding_json}[kind](text, pids)
    sys.exit(1 if failures else 0)


main()
