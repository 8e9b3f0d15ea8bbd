#!/usr/bin/env python3
"""Issue 11's figures against a running stack: many live streams held open at once, what they
cost nginx, and how fast a commit reaches a subscriber while they are open.

    bench/live.py --subscribers N --out FILE.json --ready FILE

Opens N streams (`GET /api/v1/stream`, one token each, spread over the bench users), reads
nginx's memory before and after, then measures TRIALS times the delay from a commit's return
(a sync row straight into Postgres, for one of its own users) to the `changed` event at that
user's stream. Then writes FILE.json and touches the ready file, and holds every stream open
until SIGTERM or SIGINT (bench/run.sh measures the cached API meanwhile), then closes them and
deletes what it wrote (its users' rows, the streams' `live_streams` rows).

Reads BASE_URL, DATABASE_URL, JWT_SECRET_KEY and RUN_DIR (nginx's pid file) from the
environment.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from jwt_token import make_token  # noqa: E402  (scripts/jwt_token.py)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Tests" / "Integration"))
from sse import next_event_async, open_async  # noqa: E402  (the tests' stream client)

TRIALS = int(os.environ.get("LIVE_TRIALS", "100"))
OPENING_CONCURRENCY = 200
BENCH_USERS = 1000   # bench/run.sh's dataset: users 1..1000 of generate.sql


def token(secret: str, sub: str, ttl: int) -> str:
    """A distinct token (its own `jti`, so its own stream channel) of `sub`."""
    return make_token(secret.encode(), sub, ttl, int(time.time()), extra={"jti": uuid.uuid4().hex})


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def nginx_rss_mb(run_dir: str) -> float:
    """Resident memory of nginx's master and its workers (the stack's, by its pid file)."""
    master = int(Path(run_dir, "nginx.pid").read_text().split()[0])
    pids = [master] + [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


async def hold(args, base: str, secret: str, database: str) -> dict:
    url = urlsplit(base)
    bench_users = [f"00000000-0000-4000-8000-{i:012x}" for i in range(1, BENCH_USERS + 1)]
    tokens = [token(secret, bench_users[i % len(bench_users)], 900) for i in range(args.subscribers)]
    rss_before = nginx_rss_mb(os.environ["RUN_DIR"])

    gate = asyncio.Semaphore(OPENING_CONCURRENCY)
    streams, failures = [], []

    async def one(tok):
        async with gate:
            try:
                streams.append(await open_async(url.hostname, url.port, tok))
            except Exception as error:  # noqa: BLE001 (counted and reported)
                failures.append(repr(error))

    started = time.monotonic()
    await asyncio.gather(*(one(t) for t in tokens))
    opened_in = time.monotonic() - started
    print(f"live.py: {len(streams)} streams open in {opened_in:.1f} s ({len(failures)} failed)", file=sys.stderr)
    await asyncio.sleep(2)   # nginx settles; its memory is read with every stream in place
    rss_after = nginx_rss_mb(os.environ["RUN_DIR"])

    # The delay: one own user, one stream, TRIALS commits.
    user = str(uuid.uuid4())
    delays = []
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user, f"bench-live-{user}@example.test"))
        reader, writer = await open_async(url.hostname, url.port, token(secret, user, 900))
        await asyncio.sleep(0.5)   # the supervisor has the registration
        try:
            for trial in range(TRIALS):
                db.execute("INSERT INTO reconciliation_logs (user_id, event_type, status, mt5_position_id, symbol,"
                           " direction, volume, entry_price, current_price, matched, duration_ms)"
                           " VALUES (%s, 'sync', 'success', %s, 'XAUUSD', 'buy', 0.1, 1950.5, 1955.75, 1, 100)",
                           (user, trial + 1))
                committed = time.monotonic()
                name = await asyncio.wait_for(next_event_async(reader), timeout=5)
                if name == "changed":
                    delays.append((time.monotonic() - committed) * 1000)
                await asyncio.sleep(0.02)
        finally:
            writer.close()
            db.execute("DELETE FROM reconciliation_logs WHERE user_id = %s", (user,))
            db.execute("DELETE FROM users WHERE id = %s", (user,))

    result = {
        "subscribers": args.subscribers, "opened": len(streams), "failed": len(failures),
        "failures": sorted(set(failures))[:5], "open_seconds": round(opened_in, 1),
        "nginx_rss_mb_before": rss_before, "nginx_rss_mb_with_streams": rss_after,
        "nginx_kb_per_stream": round((rss_after - rss_before) * 1024 / max(1, len(streams)), 1),
        "delay": {"trials": len(delays), "p50_ms": round(statistics.median(delays), 2),
                  "p99_ms": round(percentile(delays, 99), 2), "max_ms": round(max(delays), 2)},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.ready).touch()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for _, stream_writer in streams:
        stream_writer.close()
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("DELETE FROM live_streams WHERE user_id = ANY(%s::uuid[])", (bench_users,))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.subscribers + 1024
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    asyncio.run(hold(args, os.environ["BASE_URL"], os.environ["JWT_SECRET_KEY"], os.environ["DATABASE_URL"]))


if __name__ == "__main__":
    main()
