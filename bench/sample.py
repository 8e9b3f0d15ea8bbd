#!/usr/bin/env python3
"""One snapshot of the benchmark stack's processes, as JSON on stdout (bench/run.sh).

    bench/sample.py [--pool PID] [--nginx PID] [--ceiling PID] [--postgres PID] [--memcached PID]
                    [--bench PID]

For each group: the CPU time (utime+stime, clock ticks) of the process and its children (a
master's workers, the pool supervisor's workers, the postmaster's backends) and of the children
it has reaped (its cutime+cstime), and the part of it spent in the kernel (stime, cstime); for
the pool also each worker's pid, start time and VmRSS (kB, from /proc/PID/status). Plus the
machine's /proc/stat CPU counters and context switches (`ctxt`), so a pair of snapshots gives
each group's share of the machine and the switches per request.
Reads /proc only; never signals anything.
"""
import argparse
import json
import os
import sys
import time


def read_stat(pid):
    """(ppid, utime+stime, starttime, cutime+cstime, stime, cstime) of a pid, or None when it
    is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    # rest[0] is field 3 (state): ppid field 4, utime 14, stime 15, cutime 16, cstime 17,
    # starttime 22
    return (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19]), int(rest[13]) + int(rest[14]),
            int(rest[12]), int(rest[14]))


def all_stats():
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = read_stat(int(name))
            if s is not None:
                stats[int(name)] = s
    return stats


def vm_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_cpu():
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    fields = [int(x) for x in lines[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    ctxt = next((int(line.split()[1]) for line in lines if line.startswith("ctxt ")), None)
    return {"total": sum(fields[:8]), "idle": idle, "ctxt": ctxt}


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("pool", "nginx", "ceiling", "postgres", "memcached", "bench"):
        parser.add_argument(f"--{name}", type=int, default=0)
    args = parser.parse_args()

    stats = all_stats()
    children = {}
    for pid, (ppid, *_) in stats.items():
        children.setdefault(ppid, []).append(pid)

    out = {"time": time.time(), "clk_tck": os.sysconf("SC_CLK_TCK"), "cpu": machine_cpu(),
           "ncpu": os.cpu_count(), "groups": {}, "workers": []}
    for name in ("pool", "nginx", "ceiling", "postgres", "memcached", "bench"):
        root = getattr(args, name)
        if not root or root not in stats:
            continue
        # bench: bench/run.sh itself and what it has reaped (wrk/ab, through `timeout`); its
        # live children at this moment are this script and the like.
        pids = [root] if name == "bench" else [root] + sorted(children.get(root, []))
        # CPU of the live processes, plus what the root has reaped: a worker or backend that
        # exits between two snapshots is added to its parent's cutime+cstime when reaped, so
        # the difference of two snapshots counts it exactly.
        out["groups"][name] = {
            "live": {f"{p}:{stats[p][2]}": stats[p][1] for p in pids if p in stats},
            "reaped": stats[root][3],
            "live_kernel": sum(stats[p][4] for p in pids if p in stats),
            "reaped_kernel": stats[root][5],
        }
        if name == "pool":
            for p in sorted(children.get(root, [])):
                out["workers"].append({"pid": p, "start": stats[p][2], "rss_kb": vm_rss_kb(p),
                                       "ticks": stats[p][1]})
            out["supervisor_rss_kb"] = vm_rss_kb(root)
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
