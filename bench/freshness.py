#!/usr/bin/env python3
"""Issue 9's figures against a running stack: how fast a commit reaches the views, how many
rows per second the write endpoint takes, and how often a hot view is recomputed when 200
requests arrive for it right after an invalidation.

    bench/freshness.py --out FILE.json      (bench/run.sh runs it after the suite)

Reads BASE_URL, DATABASE_URL and JWT_SECRET_KEY from the environment. Writes into its own
users (emails `bench-freshness-…@example.test`) and deletes their rows afterwards, so the bench
dataset is unchanged.

- invalidation: TRIALS times, a sync row committed straight into Postgres, then the status view
  polled through nginx (a new token per poll: no rate limit in the way) until it shows the row;
  the delay from the commit's return to that answer (p50/p99/max).
- ingest: CONCURRENCY clients POST 1,000-event batches to /reconciliation/events for SECONDS;
  rows written per second.
- stampede: ROUNDS times, a commit invalidates a user's status view, then 200 requests for it
  are sent at once; the recomputes are the answers with X-Cache MISS.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from jwt_token import make_token  # noqa: E402  (scripts/jwt_token.py)

TRIALS = int(os.environ.get("FRESHNESS_TRIALS", "100"))
SECONDS = float(os.environ.get("INGEST_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("INGEST_CONCURRENCY", "4"))
ROUNDS = 3
BURST = 200


def token(secret: str, sub: str, scope: str | None = None) -> str:
    """A distinct one-hour token of `sub` (its own `jti`)."""
    return make_token(secret.encode(), sub, 3600, int(time.time()), scope, extra={"jti": uuid.uuid4().hex})


class Client:
    """One kept-alive HTTP/1.1 connection to nginx."""

    def __init__(self, base: str):
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def request(self, method: str, path: str, tok: str, body: bytes | None = None):
        headers = {"Authorization": f"Bearer {tok}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.getheader("X-Cache"), resp.read()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def insert_sync(db, uid: str, ticket: int) -> None:
    db.execute("INSERT INTO reconciliation_logs (user_id, event_type, status, mt5_position_id, symbol, direction,"
               " volume, entry_price, current_price, matched, duration_ms)"
               " VALUES (%s, 'sync', 'success', %s, 'XAUUSD', 'buy', 0.1, 1950.5, 1955.75, 1, 100)", (uid, ticket))


def invalidation(base, secret, db, uid) -> dict:
    client = Client(base)
    delays = []
    for trial in range(1, TRIALS + 1):
        client.request("GET", "/api/v1/reconciliation/status", token(secret, uid))
        insert_sync(db, uid, trial)
        committed = time.monotonic()
        while True:
            status, _, body = client.request("GET", "/api/v1/reconciliation/status", token(secret, uid))
            if status == 200 and json.loads(body)["total_syncs"] >= trial:
                delays.append((time.monotonic() - committed) * 1000)
                break
            if time.monotonic() - committed > 5:
                raise SystemExit(f"freshness.py: trial {trial}: the commit was not visible after 5 s")
    return {"trials": TRIALS, "p50_ms": round(statistics.median(delays), 2), "p99_ms": round(percentile(delays, 99), 2),
            "max_ms": round(max(delays), 2)}


def ingest(base, secret, users) -> dict:
    writer = token(secret, str(uuid.uuid4()), scope="reconciliation:write")
    rows, failures, lock = [0], [0], threading.Lock()
    deadline = time.monotonic() + SECONDS

    def run(index: int) -> None:
        client = Client(base)
        batch_number = 0
        while time.monotonic() < deadline:
            batch_number += 1
            uid = users[(index + batch_number) % len(users)]
            events = [{"user_id": uid, "event_type": "guard_trigger", "status": "success", "symbol": "XAUUSD",
                       "guard_condition": "price_gap", "guard_level": "normal", "price_gap_pct": 0.1 * (i % 10)}
                      for i in range(1000)]
            status, _, _ = client.request("POST", "/api/v1/reconciliation/events", writer,
                                          json.dumps({"events": events}).encode())
            with lock:
                if status == 201:
                    rows[0] += 1000
                else:
                    failures[0] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"batch_size": 1000, "concurrency": CONCURRENCY, "seconds": round(elapsed, 2), "rows": rows[0],
            "failed_batches": failures[0], "rows_per_s": round(rows[0] / elapsed)}


def stampede(base, secret, db, uid) -> dict:
    recomputes = []
    for round_ in range(ROUNDS):
        Client(base).request("GET", "/api/v1/reconciliation/status", token(secret, uid))
        insert_sync(db, uid, 100_000 + round_)
        time.sleep(0.2)  # the invalidation lands (milliseconds; see "invalidation")
        clients = [Client(base) for _ in range(BURST)]
        for client in clients:
            client.conn.connect()
        tokens = [token(secret, uid) for _ in range(BURST)]
        barrier = threading.Barrier(BURST)
        results = [None] * BURST

        def send(i: int) -> None:
            barrier.wait()
            results[i] = clients[i].request("GET", "/api/v1/reconciliation/status", tokens[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(BURST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        recomputes.append(sum(1 for status, cache, _ in results if status == 200 and cache == "MISS"))
    return {"rounds": ROUNDS, "concurrent": BURST, "recomputes": recomputes, "max": max(recomputes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base, url, secret = os.environ["BASE_URL"], os.environ["DATABASE_URL"], os.environ["JWT_SECRET_KEY"]
    with psycopg.connect(url, autocommit=True) as db:
        users = [str(uuid.uuid4()) for _ in range(20)]
        for uid in users:
            db.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (uid, f"bench-freshness-{uid}@example.test"))
        try:
            result = {"invalidation": invalidation(base, secret, db, users[0]),
                      "stampede": stampede(base, secret, db, users[1]),
                      "ingest": ingest(base, secret, users[2:])}
        finally:
            db.execute("DELETE FROM reconciliation_logs WHERE user_id = ANY(%s::uuid[])", (users,))
            db.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (users,))
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    inv, ing, st = result["invalidation"], result["ingest"], result["stampede"]
    print(f"[bench] freshness: commit → fresh view p50 {inv['p50_ms']} ms, p99 {inv['p99_ms']} ms ({inv['trials']} trials);"
          f" ingest {ing['rows_per_s']:,} rows/s ({ing['concurrency']} clients, 1,000-event batches);"
          f" recomputes per hot-key invalidation under {st['concurrent']} requests {st['recomputes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
