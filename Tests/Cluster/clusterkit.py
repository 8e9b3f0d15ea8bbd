"""What the cluster tests share: wrk load beside a fault (Tests/Faults/load.py), probing clients
that time every answer and check it is their own user's, nginx's view of slow answers, and one
row per case in CLUSTER_DIR/results.md (docs/SCALING.md quotes them)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests

import support as s
from load import Load, LoadResult

SLOW_S = 1.0          # an answer slower than this is part of the outage
FRESH_BOUND_S = 0.1   # a commit is seen by every request sent this long after it (issue 9's bound)
FRESHNESS_PROBES = 1  # FreshnessProbe's client connections
PROBERS = 8
DURATION = 24         # seconds of wrk load per case
FAULT_AT, BACK_AT = 5, 12
CONNECTIONS = 32

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster-run"))


SYNC_ROW = ("INSERT INTO reconciliation_logs (user_id, event_type, status, mt5_position_id, symbol, direction,"
            " volume, entry_price, current_price, matched, duration_ms)"
            " VALUES (%s, 'sync', 'success', %s, 'XAUUSD', 'buy', 0.1, 1950.5, 1955.75, 1, 200)")


def commit_sync(cluster, user: str, ticket: int, db=None) -> None:
    """A sync row for USER committed straight into Postgres, as the bot writes (over `db`, an
    autocommit connection, or a new one)."""
    if db is not None:
        db.execute(SYNC_ROW, (user, ticket))
        return
    with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as own:
        own.execute(SYNC_ROW, (user, ticket))


def memcached_command(address: str, command: str) -> str:
    """The answer of memcached at ADDRESS (host:port) to an ASCII COMMAND that ends with END."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as c:
        c.sendall(command.encode() + b"\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


def cluster_sh(*args: str, timeout: float = 180) -> str:
    result = subprocess.run([str(CLUSTER_SH), *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "CLUSTER_DIR": str(CLUSTER_DIR)})
    if result.returncode != 0:
        raise AssertionError(f"scripts/cluster.sh {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


@dataclass
class Probe:
    sent: float
    took: float
    status: int            # 0: no answer
    own: bool              # the answer was this user's (or an error body)


class Prober(s.ClientThreads):
    """PROBERS clients beside wrk, each one request at a time through nginx, rotating over the
    cluster's users; every probe is timed and its answer checked to be its user's own."""

    def __init__(self, cluster):
        super().__init__(PROBERS)
        self.cluster = cluster
        self.probes: list[Probe] = []

    def run(self, n: int):
        users = self.cluster.users
        tokens = {u: self.cluster.token(u) for u in users}
        session = requests.Session()
        i = n
        while not self.stop.is_set():
            user = users[i % len(users)]
            i += PROBERS
            sent = time.monotonic()
            try:
                resp = session.get(self.cluster.base_url + s.STATUS, headers=s.bearer(tokens[user]), timeout=15)
                status = resp.status_code
                own = status != 200 or resp.json().get("user_id") == user
            except requests.RequestException:
                status, own = 0, True
            self.probes.append(Probe(sent, time.monotonic() - sent, status, own))
            time.sleep(0.02)

    def outage(self, since: float) -> tuple[int, float]:
        """Probes answered after `since` that failed or were slow, and the seconds from `since`
        until the last of them was answered (0 when none)."""
        bad = [p for p in self.probes if p.sent + p.took >= since and (p.status != 200 or p.took > SLOW_S)]
        return len(bad), max((p.sent + p.took - since for p in bad), default=0.0)


class FreshnessProbe(s.ClientThreads):
    """The bot and a trader beside the load: a sync row committed for one user every 0.25 s,
    then that user's status asked for until it shows the row. An answer to a request sent more
    than FRESH_BOUND_S after the commit that does not show it is stale; failed or slow answers
    are the outage's, not staleness."""

    def __init__(self, cluster):
        super().__init__(1)
        self.cluster = cluster
        self.commits = 0
        self.stale: list[float] = []     # seconds after the commit each stale request was sent
        self.stale_answers: list[tuple] = []  # (sent after the commit s, took s, X-Cache, X-Request-Id)
        self.delays: list[float] = []    # commit → the first request that saw it was sent

    def run(self, index: int):
        user = self.cluster.users[-1]
        session = requests.Session()
        headers = s.bearer(self.cluster.token(user))
        with psycopg.connect(self.cluster.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as db:
            ticket = 990_000
            while not self.stop.is_set():
                ticket += 1
                commit_sync(self.cluster, user, ticket, db)
                committed = time.monotonic()
                expected = db.execute("SELECT count(*) FROM reconciliation_logs WHERE user_id = %s AND event_type = 'sync'",
                                      (user,)).fetchone()[0]
                self.commits += 1
                while not self.stop.is_set() and time.monotonic() - committed < 30:
                    sent = time.monotonic()
                    try:
                        resp = session.get(self.cluster.base_url + s.STATUS, headers=headers, timeout=15)
                    except requests.RequestException:
                        continue
                    if resp.status_code != 200:
                        continue
                    if resp.json()["total_syncs"] >= expected:
                        self.delays.append(sent - committed)
                        break
                    if sent - committed > FRESH_BOUND_S:
                        self.stale.append(sent - committed)
                        self.stale_answers.append((round(sent - committed, 3), round(time.monotonic() - sent, 3),
                                                   resp.headers.get("X-Cache"), resp.headers.get("X-Request-Id")))
                    time.sleep(0.005)
                time.sleep(0.25)


def request_mix(cluster) -> list[tuple[str, str]]:
    mix = []
    for user in cluster.users:
        tok = cluster.token(user)
        mix += [(s.STATUS, tok), (s.OPEN, tok), (s.GUARDS, tok), (s.LOGS + "?hours=24&limit=20", tok)]
    return mix


def record(name: str, result, probes: int, bad: int, recovery_s: float, slow: int, longest: float,
           fresh: FreshnessProbe, notes: str) -> None:
    """One row of CLUSTER_DIR/results.md (docs/SCALING.md quotes them)."""
    seen = f"{len(fresh.delays)} of {fresh.commits}, {len(fresh.stale)} stale, worst {max(fresh.delays, default=0) * 1000:.0f} ms"
    line = (f"| {name} | {result.requests} | {result.failed} | {probes} | {bad} | {slow} | "
            f"{longest:.1f} | {recovery_s:.1f} | {seen} | {notes} |\n")
    out = CLUSTER_DIR / "results.md"
    if not out.exists():
        out.write_text("| case | wrk requests | failed | probes | probes failed or slow | answered in > 1 s "
                       "(nginx) | longest s | recovery s (probes) | commits seen | notes |\n"
                       "|---|---|---|---|---|---|---|---|---|---|\n")
    with out.open("a") as f:
        f.write(line)
    print(line)


def slow_in_access_log(cluster, first_line: int) -> tuple[int, float]:
    """Requests logged since line `first_line` that nginx took longer than SLOW_S to answer, and
    the longest (seconds). Live streams are left out: they last as long as their client stays."""
    time.sleep(1.2)  # flushed every second
    lines = cluster.access_log().read_text().splitlines()[first_line:]
    times = [entry["request_time"] for entry in map(json.loads, lines) if not entry["uri"].startswith(s.STREAM)]
    slow = [t for t in times if t > SLOW_S]
    return len(slow), max(times, default=0.0)


@dataclass
class FaultOutcome:
    load: LoadResult
    probes_bad: int          # probes that failed or were slow after the fault
    recovery_s: float        # from the fault until the last of them was answered
    slow: int                # requests nginx took more than SLOW_S to answer
    longest_s: float


def run_fault(cluster, name: str, fault, repair) -> FaultOutcome:
    """DURATION s of wrk load, PROBERS probing clients and a FreshnessProbe; `fault()` at
    FAULT_AT, `repair()` at BACK_AT; every answer must be its user's own, and no answer to a
    request sent FRESH_BOUND_S after a commit may miss it. Records the row and returns the figures."""
    first_line = len(cluster.access_log().read_text().splitlines())
    with FreshnessProbe(cluster) as fresh, Prober(cluster) as prober, Load(cluster.base_url, request_mix(cluster), name=name,
                                         duration=DURATION, connections=CONNECTIONS, timeout=15) as load:
        load.sleep_until(FAULT_AT)
        fault_at = time.monotonic()
        fault()
        load.sleep_until(BACK_AT)
        repair()
    result = load.result
    bad, recovery_s = prober.outage(fault_at)
    assert all(p.own for p in prober.probes), "an answer carried another user's data"
    slow, longest = slow_in_access_log(cluster, first_line)
    cache = " ".join(f"{k}:{v}" for k, v in sorted(result.cache.items()))
    record(name, result, len(prober.probes), bad, recovery_s, slow, longest, fresh,
           f"fault at {FAULT_AT} s, repaired at {BACK_AT} s of {DURATION} s; {result.rps:.0f} req/s; X-Cache {cache}")
    assert fresh.commits >= 20 and len(fresh.delays) >= fresh.commits - 1, (fresh.commits, len(fresh.delays))
    assert not fresh.stale, (f"{len(fresh.stale)} answers missed a commit, sent {sorted(fresh.stale)[-5:]} s after it; "
                             f"first and last: {fresh.stale_answers[:3]} … {fresh.stale_answers[-3:]}")
    return FaultOutcome(result, bad, recovery_s, slow, longest)


def record_freshness(name: str, probes: int, stale: int, first_hit_s: float | None) -> None:
    """One row of CLUSTER_DIR/freshness.md (docs/SCALING.md quotes them)."""
    out = CLUSTER_DIR / "freshness.md"
    if not out.exists():
        out.write_text("| case | probes after the host returned | stale | first HIT after return (s) |\n"
                       "|---|---|---|---|\n")
    hit = "none while probing" if first_hit_s is None else f"{first_hit_s:.2f}"
    line = f"| {name} | {probes} | {stale} | {hit} |\n"
    with out.open("a") as f:
        f.write(line)
    print(line)
