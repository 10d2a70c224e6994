"""machine: what bench.txt says about the host and the allocators (bench/run)."""
import os
import platform
import subprocess
import time


def describe(top, envs, notes):
    """The head of bench.txt: date, machine, package versions, numashim's
    commit and what each allocator is."""
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    def dpkg(pkg):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                           capture_output=True, text=True)
        return r.stdout.strip() or "not installed"

    lines = [
        f"date      {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"machine   nproc {os.cpu_count()}, {first('/proc/cpuinfo', 'model name')}, "
        f"{int(first('/proc/meminfo', 'MemTotal').split()[0]) // 1024} MiB, "
        f"kernel {platform.release()}",
        f"packages  libc6 {dpkg('libc6')}, libjemalloc2 {dpkg('libjemalloc2')}, "
        f"libmimalloc2.0 {dpkg('libmimalloc2.0')}, "
        f"libtcmalloc-minimal4 {dpkg('libtcmalloc-minimal4')}, valgrind {dpkg('valgrind')}",
    ]
    try:
        rev = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        # What libnumashim.so is built from (stats/writer.c and stale.c are
        # in it) and what the figures come from: the workloads and the code
        # that computes them. Not bench/results/, which a run rewrites.
        dirty = subprocess.run(["git", "-C", top, "status", "--porcelain", "--",
                                "shim", "policy", "stats", "configure.ac", "Makefile.am",
                                "bench/*.c", "bench/*.h", "bench/*.py", "bench/run",
                                "bench/Makefile.inc"],
                               capture_output=True, text=True).stdout.strip()
        lines.append(f"numashim  git {rev or '?'}"
                     + (" + uncommitted changes in shim/, policy/, stats/, the build or "
                        "bench's workloads and scripts" if dirty else ""))
    except OSError:
        pass
    for name, (_, path, what) in envs.items():
        lines.append(f"  {name:<12} {what}" + (f"  [{path}]" if path else ""))
    for name, note in notes.items():
        lines.append(f"  {name} says: {note}")
    return lines
