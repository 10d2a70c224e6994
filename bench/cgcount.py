"""cgcount: the instructions bench/run takes from callgrind.out files."""
import re
import subprocess

# numashim's stats refresh runs once a second of wall time (shim/stats.c),
# and under callgrind a run lasts 20-50 times longer than it does alone:
# whether a run holds one refresh (1.3 M instructions the first, the ctl
# module's start included) or none then depends on valgrind's speed and
# the machine's load, not on the work (larson at 0.01: 39.3 M or 40.4 M).
# Its count is taken off; the timed runs pay it at its real rate.
# callgrind_annotate names a function once per source file its code came
# from (refresh_locked: shim/stats.c, and shim/shim.h for what it inlined),
# each line with the whole call's inclusive count, some with the object
# after the name and some without: the largest is the function's.
REFRESH_FN = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+\S*:refresh_locked(\s|$)")


def total(path):
    """A callgrind.out file's instruction total."""
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return 0


def refreshes(path):
    """Inclusive instructions of numashim's stats refreshes in the file."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--auto=no",
                          "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    return max((int(m.group(1).replace(",", "")) for m in
                map(REFRESH_FN.match, out.splitlines()) if m), default=0)


def work(files):
    """Instructions of a run (one file per process) with its refreshes taken
    off, and those refreshes'."""
    r = sum(refreshes(f) for f in files)
    return sum(total(f) for f in files) - r, r
