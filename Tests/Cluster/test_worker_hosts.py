"""Worker hosts behind one nginx (docs/SCALING.md): requests are spread over both pools; a
worker host that dies — its cable pulled, or its pool killed — costs its in-flight requests
only, nginx passes everything else to the other host and uses the first again once it is back
(clusterkit.run_fault: wrk load, probing clients, the recovery time)."""
from __future__ import annotations

import json
import subprocess
import time

import psycopg
import requests

import support as s
from clusterkit import CONNECTIONS, FRESHNESS_PROBES, PROBERS, cluster_sh, run_fault


def upstreams_seen(cluster, count: int = 200) -> set[str]:
    """The pools that answered the last `count` requests sent now (nginx's access log)."""
    session = requests.Session()
    tok = cluster.token(cluster.users[0])
    for _ in range(count):
        session.get(cluster.base_url + s.GUARDS, headers=s.bearer(tok), timeout=15)
    time.sleep(1.2)  # the access log is flushed every second
    lines = cluster.access_log().read_text().splitlines()[-count:]
    return {json.loads(line)["upstream_addr"] for line in lines}


def pools(cluster) -> set[str]:
    return {f"{cluster.addr(h)}:9000" for h in ("w1", "w2")}


def test_requests_are_spread_over_both_worker_hosts(cluster):
    assert upstreams_seen(cluster) == pools(cluster)


def assert_costs_in_flight_only(cluster, outcome) -> None:
    # Only what was in flight on the host may fail or wait (every client connection at most
    # once), and no longer than nginx's fastcgi_read_timeout (10 s) before the other host
    # answers it.
    result = outcome.load
    assert result.failed <= CONNECTIONS, result.describe()
    assert result.ok > 1000, result.describe()
    assert outcome.slow <= CONNECTIONS + PROBERS + FRESHNESS_PROBES and outcome.longest_s < 11, (outcome.slow, outcome.longest_s)
    assert outcome.recovery_s < 11, f"outage of {outcome.recovery_s:.1f} s"
    # The host is used again once back (nginx's fail_timeout is 5 s).
    s.wait_until(lambda: upstreams_seen(cluster, 100) == pools(cluster), timeout=30, interval=1,
                 what="both worker hosts answering again")


def test_a_worker_host_whose_cable_is_pulled_costs_its_in_flight_requests_only(cluster):
    outcome = run_fault(cluster, "w1 link cut", lambda: cluster_sh("cut", "w1"), lambda: cluster_sh("restore", "w1"))
    assert_costs_in_flight_only(cluster, outcome)


def test_a_worker_host_whose_pool_is_killed_costs_its_in_flight_requests_only(cluster):
    def kill_pool():
        pids = cluster_sh("pids", "w2").split()
        pool = int(pids[pids.index("pool") + 1])
        subprocess.run(["kill", "-KILL", "--", f"-{pool}"], check=True)  # the supervisor's group

    outcome = run_fault(cluster, "w2 pool SIGKILL", kill_pool, lambda: cluster_sh("pool-start", "w2"))
    assert_costs_in_flight_only(cluster, outcome)


def test_a_worker_host_back_from_a_long_partition_listens_for_commits_again(cluster):
    """Cut off longer than Postgres' keepalives (~11 s), a worker host's sessions are dropped by
    the server without the host hearing of it. Its change listener only ever reads, so without
    keepalives of its own it would wait on a dead session for good — deaf to commits while its
    workers keep serving the cache. It must notice, reconnect and replace the epoch."""
    def listener_since(moment) -> bool:
        with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as db:
            return db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                              " 'trading-api supervisor change listener' AND host(client_addr) = %s"
                              " AND backend_start > %s", (cluster.addr("w2"), moment)).fetchone()[0] == 1

    with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as db:
        before = db.execute("SELECT clock_timestamp()").fetchone()[0]
    cluster_sh("cut", "w2")
    try:
        time.sleep(15)
    finally:
        cluster_sh("restore", "w2")
    s.wait_until(lambda: listener_since(before), timeout=20, interval=0.5,
                 what="w2's change listener connected again after its partition")
