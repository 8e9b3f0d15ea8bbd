"""Worker hosts behind one nginx (docs/SCALING.md): requests are spread over both pools; a
worker host that dies — its cable pulled, or its pool killed — costs its in-flight requests
only, nginx passes everything else to the other host and uses the first again once it is back.
Under wrk load (Tests/Faults/load.py, the fault suite's driver); a prober beside it sends one
request at a time, each user's, and checks every answer is that user's own: its timeline gives
the recovery time. Each case writes its figures to CLUSTER_DIR/results.md (SCALING.md quotes
them)."""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

import requests

import support as s
from conftest import CLUSTER_DIR, cluster_sh
from load import Load

SLOW_S = 1.0          # an answer slower than this is part of the outage
PROBERS = 8
DURATION = 24         # seconds of wrk load per case
FAULT_AT, BACK_AT = 5, 12


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


def request_mix(cluster) -> list[tuple[str, str]]:
    mix = []
    for user in cluster.users:
        tok = cluster.token(user)
        mix += [(s.STATUS, tok), (s.OPEN, tok), (s.GUARDS, tok), (s.LOGS + "?hours=24&limit=20", tok)]
    return mix


def upstreams_seen(cluster, count: int = 200) -> set[str]:
    """The pools that answered the last `count` requests sent now (nginx's access log)."""
    session = requests.Session()
    tok = cluster.token(cluster.users[0])
    for _ in range(count):
        session.get(cluster.base_url + s.GUARDS, headers=s.bearer(tok), timeout=15)
    time.sleep(1.2)  # the access log is flushed every second
    lines = cluster.access_log().read_text().splitlines()[-count:]
    return {json.loads(line)["upstream_addr"] for line in lines}


def record(name: str, result, probes: int, bad: int, recovery_s: float, slow: int, longest: float,
           notes: str) -> None:
    """One row of CLUSTER_DIR/results.md (docs/SCALING.md quotes them)."""
    line = (f"| {name} | {result.requests} | {result.failed} | {probes} | {bad} | {slow} | "
            f"{longest:.1f} | {recovery_s:.1f} | {notes} |\n")
    out = CLUSTER_DIR / "results.md"
    if not out.exists():
        out.write_text("| case | wrk requests | failed | probes | probes failed or slow | answered in > 1 s "
                       "(nginx) | longest s | recovery s (probes) | notes |\n"
                       "|---|---|---|---|---|---|---|---|---|\n")
    with out.open("a") as f:
        f.write(line)
    print(line)


def pools(cluster) -> set[str]:
    return {f"{cluster.addr(h)}:9000" for h in ("w1", "w2")}


def test_requests_are_spread_over_both_worker_hosts(cluster):
    assert upstreams_seen(cluster) == pools(cluster)


def slow_in_access_log(cluster, first_line: int) -> tuple[int, float]:
    """Requests logged since line `first_line` that nginx took longer than SLOW_S to answer, and
    the longest (seconds)."""
    time.sleep(1.2)  # flushed every second
    lines = cluster.access_log().read_text().splitlines()[first_line:]
    times = [json.loads(line)["request_time"] for line in lines]
    slow = [t for t in times if t > SLOW_S]
    return len(slow), max(times, default=0.0)


def run_fault(cluster, name: str, fault, repair) -> None:
    first_line = len(cluster.access_log().read_text().splitlines())
    with Prober(cluster) as prober, Load(cluster.base_url, request_mix(cluster), name=name,
                                         duration=DURATION, connections=32, timeout=15) as load:
        load.sleep_until(FAULT_AT)
        fault_at = time.monotonic()
        fault()
        load.sleep_until(BACK_AT)
        repair()
    result = load.result
    bad, recovery_s = prober.outage(fault_at)
    assert all(p.own for p in prober.probes), "an answer carried another user's data"
    slow, longest = slow_in_access_log(cluster, first_line)
    record(name, result, len(prober.probes), bad, recovery_s, slow, longest,
           f"fault at {FAULT_AT} s, repaired at {BACK_AT} s of {DURATION} s; {result.rps:.0f} req/s")
    # Only what was in flight on the host may fail or wait (32 + PROBERS connections), and no
    # longer than nginx's fastcgi_read_timeout (10 s) before the other host answers it.
    assert result.failed <= 32, result.describe()
    assert result.ok > 1000, result.describe()
    assert slow <= 32 + PROBERS and longest < 11, (slow, longest)
    assert recovery_s < 11, f"outage of {recovery_s:.1f} s"
    # The host is used again once back (nginx's fail_timeout is 5 s).
    s.wait_until(lambda: upstreams_seen(cluster, 100) == pools(cluster), timeout=30, interval=1,
                 what="both worker hosts answering again")


def test_a_worker_host_whose_cable_is_pulled_costs_its_in_flight_requests_only(cluster):
    run_fault(cluster, "w1 link cut", lambda: cluster_sh("cut", "w1"), lambda: cluster_sh("restore", "w1"))


def test_a_worker_host_whose_pool_is_killed_costs_its_in_flight_requests_only(cluster):
    def kill_pool():
        pids = cluster_sh("pids", "w2").split()
        pool = int(pids[pids.index("pool") + 1])
        subprocess.run(["kill", "-KILL", "--", f"-{pool}"], check=True)  # the supervisor's group

    run_fault(cluster, "w2 pool SIGKILL", kill_pool, lambda: cluster_sh("pool-start", "w2"))
