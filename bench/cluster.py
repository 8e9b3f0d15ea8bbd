#!/usr/bin/env python3
"""What a worker host costs and serves, on the cluster of docs/SCALING.md (`make bench-cluster`).

    bench/cluster.py [--duration 15] [--connections 64] [--out bench/results]

Needs the cluster up (`scripts/cluster.sh up`; CLUSTER_DIR/cluster.env) and root. Runs wrk
(bench/load.lua: the four views of 40 users, cached after the warm-up) through the web host
twice: with both worker hosts, then with w2's pool stopped; for each run it reads every host's
CPU time (its processes and what they reaped, /proc: bench/sample.py) before and after, and
prints req/s, p50/p99 and the CPU microseconds per request each host spent. A worker host's
capacity follows from its cost: C cores at 100 % serve about C × 1,000,000 / (µs per request)
requests per second of this mix. Every host here shares this machine's cores with the others
and with wrk, so the req/s of the two runs say little; the CPU cost per request is what carries
to other machines. Writes the table to OUT/cluster-<UTC time>.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "Tests" / "Faults"))
import sample  # noqa: E402  (bench/sample.py: /proc readings)
from jwt_token import make_token  # noqa: E402
from load import Load  # noqa: E402  (the fault suite's wrk driver, bench/load.lua)

CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster-run"))
HOSTS = ("web", "w1", "w2", "mc1", "mc2", "db", "db2")
USERS = 40
VIEWS = ("/api/v1/reconciliation/status", "/api/v1/positions/open", "/api/v1/guards/status",
         "/api/v1/reconciliation/logs?hours=24&limit=20")


def log(message: str) -> None:
    print(f"[bench-cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cluster_sh(*args: str) -> str:
    return subprocess.run([str(CLUSTER_SH), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "CLUSTER_DIR": str(CLUSTER_DIR)}).stdout


def env_file() -> dict[str, str]:
    path = CLUSTER_DIR / "cluster.env"
    if not path.exists():
        sys.exit(f"no {path}: start the cluster first (scripts/cluster.sh up)")
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value.strip('"')
    return out


def host_ticks() -> dict[str, int]:
    """Each host's CPU clock ticks so far: its processes' trees (from `cluster.sh pids`), plus
    what their roots reaped."""
    stats = sample.all_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> int:
        return stats[pid][1] + sum(tree(c) for c in children.get(pid, [])) if pid in stats else 0

    ticks = {}
    for host in HOSTS:
        roots = [int(line.split()[1]) for line in cluster_sh("pids", host).splitlines()
                 if line.split()[0] in ("postgres", "memcached", "nginx", "pool")]
        ticks[host] = sum(tree(r) + stats[r][3] for r in roots if r in stats)
    return ticks


def users(database_url: str) -> list[str]:
    # psycopg, not psql: the URL carries the password, which a command line would show to `ps`.
    with psycopg.connect(database_url, connect_timeout=5) as db:
        found = [str(row[0]) for row in db.execute("SELECT id FROM users ORDER BY id LIMIT %s", (USERS,))]
    if len(found) < USERS:
        log(f"generating {USERS} users")
        subprocess.run([str(ROOT / "scripts" / "generate-data.sh"), str(USERS), "60"], check=True,
                       env={**os.environ, "DATABASE_URL": database_url}, capture_output=True)
        return users(database_url)
    return found


def run(name: str, base_url: str, requests, duration: int, connections: int) -> dict:
    with Load(base_url, requests, name=f"{name} warm-up", duration=3, connections=connections):
        pass
    before, started = host_ticks(), time.monotonic()
    cpu_before = sample.machine_cpu()
    with Load(base_url, requests, name=name, duration=duration, connections=connections) as load:
        pass
    after, elapsed = host_ticks(), time.monotonic() - started
    cpu_after = sample.machine_cpu()
    result = load.result
    tick = os.sysconf("SC_CLK_TCK")
    total = cpu_after["total"] - cpu_before["total"]
    busy = (total - (cpu_after["idle"] - cpu_before["idle"])) / total * os.cpu_count() if total else 0.0
    per_request = {h: (after[h] - before[h]) / tick * 1e6 / max(1, result.requests) for h in HOSTS}
    log(result.line())
    return {"name": name, "result": result, "us": per_request, "busy": busy, "elapsed": elapsed}


def table(rows: list[dict]) -> str:
    head = ("| run | req/s | failed | p50 ms | p99 ms | " + " | ".join(f"{h} µs" for h in HOSTS)
            + " | machine cores busy |\n|" + "---|" * (6 + len(HOSTS)) + "\n")
    lines = []
    for row in rows:
        r = row["result"]
        lines.append(f"| {row['name']} | {r.rps:,.0f} | {r.failed} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                     + " | ".join(f"{row['us'][h]:.0f}" for h in HOSTS) + f" | {row['busy']:.2f} of {os.cpu_count()} |")
    return head + "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    env = env_file()
    now = int(time.time())
    secret = env["JWT_SECRET_KEY"].encode()
    requests = [(view, make_token(secret, user, 3600, now)) for user in users(env["DATABASE_URL"]) for view in VIEWS]
    rows = [run("both worker hosts", env["BASE_URL"], requests, args.duration, args.connections)]
    log("stopping w2's pool")
    cluster_sh("pool-stop", "w2")
    try:
        rows.append(run("w1 only (w2's pool stopped)", env["BASE_URL"], requests, args.duration, args.connections))
    finally:
        cluster_sh("pool-start", "w2")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = (f"# Cluster capacity run {stamp}\n\n`bench/cluster.py --duration {args.duration} --connections "
            f"{args.connections}` on {os.cpu_count()} cores, every host of docs/SCALING.md on this machine; "
            f"the four views of {USERS} users, cached. \"HOST µs\": the CPU time that host's processes spent "
            f"per request answered.\n\n" + table(rows))
    for row in rows:
        worker = row["us"]["w1"] + row["us"]["w2"]
        text += (f"\n{row['name']}: the worker hosts spent {worker:.0f} µs of CPU per request: one core of "
                 f"a worker host serves about {1e6 / worker:,.0f} requests/s of this mix at 100 %.")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"cluster-{stamp}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
