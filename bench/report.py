"""report: tables, CSV, chart and the issue-9 goals from bench/run's runs.

Everything here is arithmetic on the measurements; nothing is run."""
import csv
import math
import os
import statistics

BASE = "jemalloc"
# Where numashim runs its private jemalloc with other settings than the
# baseline's (oversize_threshold: bench/RESULTS.md, Method): such a ratio
# measures a configuration, not the shim's code, and at 0.06 it carries a
# nine-workload geometric mean. Every such mean is also given without it.
CONFIG_BOUND = ("malloc-large",)


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def fmt(x, spec):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def median_or_none(xs):
    """The median of the figures there are (peak RSS is None without GNU time)."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def quartiles(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]


def summarize(workloads, names, rows, instr):
    """Per (workload, allocator): median/min/max wall, median RSS, ratios.

    Time ratios are paired: each repetition's run over the same
    repetition's baseline run (they ran seconds apart, in one of this
    machine's fast or slow phases), then the median of those. That cancels
    phases longer than one workload's round of allocators, which a ratio of
    the two medians does not. RSS does not drift: ratio of medians."""
    s, t = {}, {}
    for r in rows:
        t[(r["rep"], r["workload"], r["allocator"])] = r
    for w in workloads:
        for a in names:
            mine = [r for r in rows if r["workload"] == w[0] and r["allocator"] == a]
            if not mine:
                continue
            walls = [r["wall"] for r in mine]
            c = {"med": statistics.median(walls), "min": min(walls), "max": max(walls),
                 "rss": median_or_none(r["rss"] for r in mine), "n": len(walls),
                 "instr": instr.get((w[0], a), {}).get("total"),
                 "net": instr.get((w[0], a), {}).get("net"),
                 "per_op": instr.get((w[0], a), {}).get("per_op")}
            for base, key in ((BASE, "je"), ("glibc", "gl"), ("numashim", "ns"),
                              ("numashim-2n", "2n")):
                pairs = [r["wall"] / t[(r["rep"], w[0], base)]["wall"] for r in mine
                         if (r["rep"], w[0], base) in t]
                c["t_" + key] = statistics.median(pairs) if pairs else None
                c["q_" + key] = quartiles(pairs) if pairs else (None, None)
            cpairs = [r["cpu"] / t[(r["rep"], w[0], BASE)]["cpu"] for r in mine
                      if (r["rep"], w[0], BASE) in t and r.get("cpu")
                      and t[(r["rep"], w[0], BASE)].get("cpu")]
            c["c_je"] = statistics.median(cpairs) if cpairs else None
            s[(w[0], a)] = c
    for (w, a), c in s.items():
        je, gl = s.get((w, BASE)), s.get((w, "glibc"))
        c["rss_je"] = c["rss"] / je["rss"] if je and je["rss"] and c["rss"] else None
        c["rss_gl"] = c["rss"] / gl["rss"] if gl and gl["rss"] and c["rss"] else None
        c["i_je"] = (c["instr"] / je["instr"]) if je and je["instr"] and c["instr"] else None
        c["n_je"] = (c["net"] / je["net"]) if je and je["net"] and c["net"] else None
        c["spread"] = (c["max"] - c["min"]) / c["med"]
    return s


def table(title, workloads, names, cell, geo=None, width=11):
    # Each column at least as wide as its allocator's name (numashim-2n-nostats)
    cols = [(n, max(width, len(n)) + 1) for n in names]
    out = [title, "  " + "workload".ljust(15) + "".join(n.rjust(wd) for n, wd in cols)]
    for w in workloads:
        out.append("  " + w[0].ljust(15) + "".join(cell(w[0], a).rjust(wd) for a, wd in cols))
    if geo:
        for label, fn in geo:
            out.append("  " + label.ljust(15) + "".join(fn(a).rjust(wd) for a, wd in cols))
    return "\n".join(out)


def goals(s, workloads, names):
    """The goals of issue 9, each with its figure and met/MISSED, or "not
    measured" when the run has no figure for it (e.g. --only simple has no
    multi-threaded workload; no GNU time, no peak RSS)."""
    wl = [w[0] for w in workloads]
    multi = [w[0] for w in workloads if w[3]]
    g = []

    def col(a, key, subset=None):
        return [s[(w, a)][key] for w in (wl if subset is None else subset)
                if (w, a) in s and s[(w, a)][key]]

    def gaps(a, key, subset=None):
        """Workloads the run has but `a` has no `key` figure for (a failed
        callgrind run, say): a mean or a worst case without them is no verdict."""
        return [w for w in (wl if subset is None else subset)
                if not ((w, a) in s and s[(w, a)][key])]

    def line(ok, text, missing=()):
        if missing:
            g.append(f"  [incomplete] {text}; no figure for {', '.join(sorted(set(missing)))}")
        else:
            g.append(f"  [{'met   ' if ok else 'MISSED'}] {text}")

    def unmeasured(claim, *figures):
        """True (and says so) when a figure the goal needs is missing."""
        if any(x is None or math.isnan(x) for x in figures):
            g.append(f"  [not measured] {claim}")
            return True
        return False

    for a, limit in (("numashim-2n", 1.03), ("numashim", 1.01)):
        if a not in names:
            continue
        t, i, n = geomean(col(a, "t_je")), geomean(col(a, "i_je")), geomean(col(a, "n_je"))
        code = [w for w in wl if w not in CONFIG_BOUND]

        def without(key):
            return "" if code == wl or not code else (
                f"; without {'/'.join(CONFIG_BOUND)} {geomean(col(a, key, code)):.3f}")
        if not unmeasured(f"{a} / jemalloc time, geometric mean (goal <= {limit})", t):
            line(t <= limit, f"{a} / jemalloc time, geometric mean {t:.3f}{without('t_je')} "
                 f"(goal <= {limit})", gaps(a, "t_je"))
        if col(a, "i_je"):
            line(i <= limit and n <= limit, f"{a} / jemalloc instructions, geometric mean "
                 f"{i:.3f} whole runs, {n:.3f} net of start-up{without('n_je')} "
                 f"(goal <= {limit})", gaps(a, "i_je") + gaps(a, "n_je"))
    if "numashim-2n" in names:
        for key, what in (("t_je", "time"), ("i_je", "instructions"),
                          ("n_je", "instructions net of start-up")):
            vals = {w: s[(w, "numashim-2n")][key] for w in wl
                    if (w, "numashim-2n") in s and s[(w, "numashim-2n")][key]}
            if not vals:
                continue
            over = {w: v for w, v in vals.items() if v > 1.10}
            worst = max(vals, key=vals.get)
            line(not over, f"numashim-2n / jemalloc {what}, no workload above 1.10: worst "
                 f"{worst} {vals[worst]:.3f}" + (f"; above: " + ", ".join(
                     f"{w} {v:.3f}" for w, v in over.items()) if over else ""),
                 gaps("numashim-2n", key))
    for a in ("numashim", "numashim-2n"):
        if a not in names or "glibc" not in names:
            continue
        vals = {w: s[(w, a)]["t_gl"] for w in multi if (w, a) in s and s[(w, a)]["t_gl"]}
        slower = {w: v for w, v in vals.items() if v >= 1}
        claim = f"{a} faster than glibc on the multi-threaded workloads"
        if not unmeasured(claim, geomean(vals.values())):
            line(not slower, f"{claim}: geometric mean {geomean(vals.values()):.2f}" + (
                "; not faster on " + ", ".join(f"{w} {v:.3f}" for w, v in slower.items())
                if slower else ""), gaps(a, "t_gl", multi))
        if ("malloc-large", a) in s:
            v = s[("malloc-large", a)]["t_gl"]
            je = s.get(("malloc-large", BASE), {}).get("t_gl")
            if not unmeasured(f"{a} malloc-large / glibc (goal <= 1.2)", v, je):
                line(v <= 1.2, f"{a} malloc-large / glibc {v:.3f} (goal <= 1.2; jemalloc "
                     f"{je:.2f})")
        ge = geomean(col(a, "t_gl"))
        if not unmeasured(f"beyond: {a} / glibc time, geometric mean (goal < 1)", ge):
            line(ge < 1, f"beyond: {a} / glibc time, geometric mean {ge:.3f} (goal < 1)",
                 gaps(a, "t_gl"))
        if "mimalloc" in names:
            mi = geomean(col("mimalloc", "t_gl"))
            if not unmeasured(f"stretch: {a} / glibc vs mimalloc / glibc", ge, mi):
                line(ge <= mi, f"stretch: {a} / glibc {ge:.3f} vs mimalloc / glibc {mi:.3f}",
                     gaps(a, "t_gl") + gaps("mimalloc", "t_gl"))
    for a in ("numashim", "numashim-2n"):
        if a not in names:
            continue
        vals = {w: s[(w, a)]["rss_je"] for w in wl if (w, a) in s and s[(w, a)]["rss_je"]}
        if unmeasured(f"{a} peak RSS / jemalloc (goal <= 1.10)", geomean(vals.values())):
            continue
        worst = max(vals, key=vals.get)
        over = {w: v for w, v in vals.items() if v > 1.10}
        line(not over, f"{a} peak RSS / jemalloc: geometric mean "
             f"{geomean(vals.values()):.2f}, worst {worst} {vals[worst]:.3f} (goal <= 1.10"
             + (f"; above: " + ", ".join(f"{w} {v:.3f}" for w, v in over.items()) + ")"
                if over else ")"), gaps(a, "rss_je"))
    return "goals of issue 9 (time: median of per-repetition ratios; instructions: callgrind)\n" + "\n".join(g)


def machinery(s, workloads):
    """numashim-2n over numashim: the same private jemalloc, with and without
    the multi-node path, so the libjemalloc.so.2 vs static-archive
    difference drops out."""
    out = ["numashim-2n / numashim (the multi-node path alone, same private jemalloc)",
           "  " + "workload".ljust(15) + "time".rjust(9) + "instr.".rjust(9)
           + "net i.".rjust(9) + "RSS".rjust(9) + "  extra instructions/op (net)"]
    cols = {"t_ns": [], "instr": [], "net": [], "rss": []}
    for w in workloads:
        a, b = s.get((w[0], "numashim-2n")), s.get((w[0], "numashim"))
        if not a or not b:
            continue
        r = {k: (a[k] / b[k] if a[k] and b[k] else None) for k in ("instr", "net", "rss")}
        r["t_ns"] = a["t_ns"]
        extra = (a["per_op"] - b["per_op"]) if a["per_op"] and b["per_op"] else None
        for k in cols:
            if r[k]:
                cols[k].append(r[k])
        out.append("  " + w[0].ljust(15) + "".join(fmt(r[k], ".3f").rjust(9) for k in cols)
                   + "  " + fmt(extra, "+.1f"))
    out.append("  " + "geo. mean".ljust(15) + "".join(
        fmt(geomean(v), ".3f").rjust(9) for v in cols.values()))
    return "\n".join(out)


def stats_cost(s, workloads):
    """What the stats segment costs: numashim-2n with it (the default) and
    without it (NUMASHIM_STATS=off), interleaved in the same run."""
    out = ["stats segment on vs off (numashim-2n vs NUMASHIM_STATS=off; throughput "
           "ratio = time off / time on, goal >= 0.98)",
           "  " + "workload".ljust(15) + "throughput".rjust(11) + "instr. on/off".rjust(15)]
    thr, ins = [], []
    for w in workloads:
        off, on = s.get((w[0], "numashim-2n-nostats")), s.get((w[0], "numashim-2n"))
        if not off or not on or not off.get("t_2n"):
            continue
        t = off["t_2n"]  # median over repetitions of off/on
        i = on["net"] / off["net"] if on.get("net") and off.get("net") else None
        thr.append(t)
        if i:
            ins.append(i)
        out.append("  " + w[0].ljust(15) + fmt(t, ".3f").rjust(11) + fmt(i, ".3f").rjust(15))
    out.append("  " + "geo. mean".ljust(15) + fmt(geomean(thr), ".3f").rjust(11)
               + fmt(geomean(ins), ".3f").rjust(15))
    return "\n".join(out)


SUMMARY_FIELDS = ["workload", "allocator", "runs", "median_s", "min_s", "max_s",
                  "peak_rss_kib", "cpu_vs_jemalloc", "time_vs_jemalloc", "time_vs_jemalloc_q1",
                  "time_vs_jemalloc_q3", "time_vs_glibc",
                  "rss_vs_jemalloc", "rss_vs_glibc", "instructions",
                  "instructions_vs_jemalloc", "net_instructions_vs_jemalloc",
                  "net_instructions_per_op"]


def write_csv(path, s, workloads, names):
    """summary.csv: rows are dicts, so a cell cannot land under another
    column's header."""
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, SUMMARY_FIELDS, restval="")
        wr.writeheader()
        for w in workloads:
            for a in names:
                c = s.get((w[0], a))
                if not c:
                    continue
                wr.writerow({
                    "workload": w[0], "allocator": a, "runs": c["n"],
                    "median_s": f"{c['med']:.4f}", "min_s": f"{c['min']:.4f}",
                    "max_s": f"{c['max']:.4f}",
                    "peak_rss_kib": int(c["rss"]) if c["rss"] is not None else "",
                    "cpu_vs_jemalloc": fmt(c["c_je"], ".4f"),
                    "time_vs_jemalloc": fmt(c["t_je"], ".4f"),
                    "time_vs_jemalloc_q1": fmt(c["q_je"][0], ".4f"),
                    "time_vs_jemalloc_q3": fmt(c["q_je"][1], ".4f"),
                    "time_vs_glibc": fmt(c["t_gl"], ".4f"),
                    "rss_vs_jemalloc": fmt(c["rss_je"], ".4f"),
                    "rss_vs_glibc": fmt(c["rss_gl"], ".4f"),
                    "instructions": c["instr"] or "",
                    "instructions_vs_jemalloc": fmt(c["i_je"], ".4f"),
                    "net_instructions_vs_jemalloc": fmt(c["n_je"], ".4f"),
                    "net_instructions_per_op": fmt(c["per_op"], ".2f")})
        for a in names:
            def geo(key):
                return fmt(geomean([s[(w[0], a)][key] for w in workloads
                                    if (w[0], a) in s]), ".4f")
            wr.writerow({"workload": "GEOMEAN", "allocator": a,
                         "cpu_vs_jemalloc": geo("c_je"), "time_vs_jemalloc": geo("t_je"),
                         "time_vs_glibc": geo("t_gl"), "rss_vs_jemalloc": geo("rss_je"),
                         "instructions_vs_jemalloc": geo("i_je"),
                         "net_instructions_vs_jemalloc": geo("n_je")})


def chart(path, s, workloads, names):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401
    except ImportError:
        return "chart: python3-matplotlib is not installed (apt-get install python3-matplotlib)"
    panels = [("t_je", "wall time / jemalloc (median of per-repetition ratios)"),
              ("n_je", "instructions / jemalloc (callgrind, net of start-up)"),
              ("rss_je", "peak RSS / jemalloc (medians)")]
    panels = [p for p in panels if any(c.get(p[0]) for c in s.values())]
    labels = [w[0] for w in workloads] + ["geo. mean"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 3.6 * len(panels)), squeeze=False)
    width = 0.8 / len(names)
    for ax, (key, title) in zip(axes[:, 0], panels):
        for k, a in enumerate(names):
            vals = [s[(w[0], a)][key] if (w[0], a) in s and s[(w[0], a)][key] else 0
                    for w in workloads]
            vals.append(geomean(vals))
            ax.bar([i + (k - (len(names) - 1) / 2) * width for i in range(len(labels))],
                   vals, width, label=a)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(
            [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10]))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.tick_params(axis="y", labelsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(1.10, color="red", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0, 0].legend(ncol=len(names), fontsize=8, loc="lower center",
                      bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {os.path.basename(path)} (beside this file)"


def write_all(outdir, head, workloads, names, rows, instr):
    s = summarize(workloads, names, rows, instr)

    def ratio(key, spec=".2f"):
        return lambda w, a: fmt(s[(w, a)][key] if (w, a) in s else None, spec)

    def geo(key):
        return lambda a: fmt(geomean([s[(w[0], a)][key] for w in workloads
                                      if (w[0], a) in s and s[(w[0], a)][key]]), ".3f")

    multi = [w for w in workloads if w[3]]
    code = [w for w in workloads if w[0] not in CONFIG_BOUND]

    def geo_code(key):
        return lambda a: fmt(geomean([s[(w[0], a)][key] for w in code
                                      if (w[0], a) in s and s[(w[0], a)][key]]), ".3f")
    nolarge = ("geo. w/o large",)   # without CONFIG_BOUND's workloads

    def geo_multi(key):
        return lambda a: fmt(geomean([s[(w[0], a)][key] for w in multi
                                      if (w[0], a) in s and s[(w[0], a)][key]]), ".3f")

    others = [r.get("others", 0) for r in rows]
    if others:
        head = head + [f"load      other processes used {statistics.median(others):.2f} CPUs "
                       f"(median over rounds; max {max(others):.2f}); "
                       f"{sum(o > 0.3 for o in others) * 100 // len(others)} % of runs "
                       f"had > 0.3 CPUs of other load"]
    secs = ["\n".join(head)]
    secs.append(table("wall time, median seconds (spread = (max-min)/median in runs.csv)",
                      workloads, names,
                      lambda w, a: fmt(s[(w, a)]["med"], ".3f") + f" {s[(w, a)]['spread'] * 100:3.0f}%"
                      if (w, a) in s else "-", width=12))
    secs.append(table("wall time / jemalloc (median of per-repetition ratios)", workloads, names, ratio("t_je"),
                      [("geo. mean", geo("t_je")), (*nolarge, geo_code("t_je")),
                       ("geo. multi-thr", geo_multi("t_je"))]))
    secs.append(table("wall time / jemalloc, per-repetition ratios: first-third quartile",
                      workloads, [n for n in names if n != BASE],
                      lambda w, a: (f"{s[(w, a)]['q_je'][0]:.2f}-{s[(w, a)]['q_je'][1]:.2f}"
                                    if (w, a) in s and s[(w, a)]["q_je"][0] else "-")))
    if any(c.get("c_je") for c in s.values()):
        secs.append(table("CPU time (user+sys) / jemalloc (median of per-repetition ratios; "
                          "less sensitive to other load than wall time)", workloads, names,
                          ratio("c_je"), [("geo. mean", geo("c_je"))]))
    if "glibc" in names:
        secs.append(table("wall time / glibc (median of per-repetition ratios)", workloads, names, ratio("t_gl"),
                          [("geo. mean", geo("t_gl")), (*nolarge, geo_code("t_gl")),
                           ("geo. multi-thr", geo_multi("t_gl"))]))
    if instr:
        secs.append(table("instructions / jemalloc, whole runs (callgrind, short inputs; "
                          "jemalloc column: millions)", workloads, names,
                          lambda w, a: (fmt(s[(w, a)]["instr"] / 1e6, ".1f") + "M"
                                        if a == BASE else ratio("i_je", ".3f")(w, a))
                          if (w, a) in s and s[(w, a)]["instr"] else "-",
                          [("geo. mean", geo("i_je")), (*nolarge, geo_code("i_je"))]))
        secs.append(table("instructions / jemalloc, net of start-up (run minus a run of "
                          "one iteration)", workloads, names, ratio("n_je", ".3f"),
                          [("geo. mean", geo("n_je")), (*nolarge, geo_code("n_je"))]))
        secs.append(table("instructions per op, net of start-up (op: a malloc, free or "
                          "realloc; startup: a process)", workloads, names,
                          lambda w, a: fmt(s[(w, a)]["per_op"] if (w, a) in s else None,
                                           ".0f" if w == "startup" else ".1f")))
    secs.append(table("peak RSS, median MiB", workloads, names,
                      lambda w, a: fmt(s[(w, a)]["rss"] / 1024, ".1f")
                      if (w, a) in s and s[(w, a)]["rss"] is not None else "-"))
    secs.append(table("peak RSS / jemalloc", workloads, names, ratio("rss_je"),
                      [("geo. mean", geo("rss_je"))]))
    if "numashim" in names and "numashim-2n" in names:
        secs.append(machinery(s, workloads))
    if "numashim-2n" in names and "numashim-2n-nostats" in names:
        secs.append(stats_cost(s, workloads))
    secs.append(goals(s, workloads, names))
    write_csv(os.path.join(outdir, "summary.csv"), s, workloads, names)
    secs.append(chart(os.path.join(outdir, "bench.png"), s, workloads, names))
    return secs
