"""The live stream across worker hosts (docs/SCALING.md): nginx on `web` holds the streams
(nchan), every worker host's supervisor hears every commit, and exactly one of them — the holder
of the publisher's advisory lock — publishes each event, over TCP to web's publisher (which
only the worker hosts may reach). When that supervisor's host goes, another takes over and
tells every stream to refetch."""
from __future__ import annotations

import time

import psycopg
import pytest

import sse
import support as s
from clusterkit import cluster_sh, commit_sync

def publisher_host(cluster) -> str | None:
    """The worker host whose supervisor holds the publisher's lock (by its session's address)."""
    with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as db:
        row = db.execute("SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                         " WHERE l.locktype = 'advisory' AND l.granted"
                         " AND a.application_name = 'trading-api supervisor live publisher'").fetchone()
    hosts = {cluster.addr(h): h for h in ("w1", "w2")}
    return hosts.get(row[0]) if row else None


def changed_events(streams, within: float) -> list[int]:
    """How many `changed` events each stream got within `within` seconds (waited for, then each
    stream's arrived events read)."""
    time.sleep(within)
    counts = [0] * len(streams)
    for i, stream in enumerate(streams):
        while (event := stream.next_event(0.05)) is not None:
            counts[i] += event.event == "changed"
    return counts


@pytest.fixture
def streams(cluster):
    """Four streams of one user through nginx (the API's answer on either worker host)."""
    user = cluster.users[30]
    opened = [sse.open_stream(cluster.base_url, headers=s.bearer(cluster.token(user))) for _ in range(4)]
    assert [st.status for st in opened] == [200] * 4, [(st.status, st.body[:200]) for st in opened]
    time.sleep(1.0)   # registrations reach every supervisor
    changed_events(opened, 0.5)  # whatever was pending
    yield user, opened
    for st in opened:
        st.close()


def test_one_supervisor_publishes_each_event_once(cluster, streams):
    user, opened = streams
    assert publisher_host(cluster) in ("w1", "w2")
    for i in range(3):
        commit_sync(cluster, user, 884_000 + i)
        time.sleep(0.4)
    assert changed_events(opened, 2.0) == [3] * 4


def takes_over(cluster, streams, fault: str, repair: str, timeout: float) -> None:
    """The publishing host's FAULT (a cluster.sh command); another supervisor must publish within
    TIMEOUT s, and the next commit must reach every stream once; REPAIR after."""
    user, opened = streams
    old = publisher_host(cluster)
    cluster_sh(fault, old)
    try:
        started = time.monotonic()
        new = s.wait_until(lambda: publisher_host(cluster) not in (None, old) and publisher_host(cluster),
                           timeout=timeout, interval=0.1, what="another supervisor publishing")
        took = time.monotonic() - started
        changed_events(opened, 1.0)  # the new publisher's resync
        commit_sync(cluster, user, 885_000)
        assert changed_events(opened, 3.0) == [1] * 4
        print(f"publisher {old}, {fault}: {new} published after {took:.1f} s")
    finally:
        cluster_sh(repair, old)


def test_another_supervisor_takes_over_when_the_publishers_pool_dies(cluster, streams):
    takes_over(cluster, streams, "pool-stop", "pool-start", timeout=10)


def test_another_supervisor_takes_over_when_the_publishers_cable_is_pulled(cluster, streams):
    # Postgres drops the vanished host's sessions (tcp_keepalives: ~11 s), and with them its lock.
    takes_over(cluster, streams, "cut", "restore", timeout=30)
