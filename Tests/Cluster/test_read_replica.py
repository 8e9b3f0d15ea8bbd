"""The read replica (docs/SCALING.md): the pools read views from the streaming replica on `db2`
(DATABASE_READ_URL) when it has replayed as far as the view's cache tags say (the primary's WAL
position the change listener read after the commits they answer), and from the primary
otherwise; writes, health and uncached answers stay on the primary. A lagging replica never
puts an answer older than a commit in the cache; a lost replica costs no request."""
from __future__ import annotations

import itertools
import time

import psycopg
import pytest
import requests

import support as s
from clusterkit import cluster_sh, commit_sync, run_fault

LIMITS = itertools.count(31)   # a fresh `limit` per use: a view never cached before (a MISS)


def worker_queries_since(url: str, since) -> list[tuple[str, str]]:
    """(application_name, last statement) of the pools' connections to the server at URL that
    ran a statement at or after `since` (the server's clock; pg_stat_activity)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as db:
        return db.execute("SELECT application_name, query FROM pg_stat_activity"
                          " WHERE application_name LIKE 'trading-api worker %%' AND query_start >= %s",
                          (since,)).fetchall()


def server_now(url: str):
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as db:
        return db.execute("SELECT clock_timestamp()").fetchone()[0]


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session


def logs(cluster, session, user: str, limit: int):
    resp = session.get(cluster.base_url + s.LOGS, params={"hours": "24", "limit": str(limit)},
                       headers=s.bearer(cluster.token(user)), timeout=15)
    return resp.headers.get("X-Cache"), s.ok(resp)


def status(cluster, session, user: str):
    resp = session.get(cluster.base_url + s.STATUS, headers=s.bearer(cluster.token(user)), timeout=15)
    return resp.headers.get("X-Cache"), s.ok(resp)["total_syncs"]


def test_views_computed_on_a_miss_are_read_from_the_replica(cluster, session):
    users = cluster.users[:20]
    for i, user in enumerate(users):  # the listener stamps each user's generation with a WAL position
        commit_sync(cluster, user, 880_000 + i)
    time.sleep(0.5)
    since = server_now(cluster.env["DATABASE_URL"])
    misses = 0
    for user in users:
        cache, _ = logs(cluster, session, user, next(LIMITS))
        misses += cache == "MISS"
    on_replica = worker_queries_since(cluster.env["DATABASE_READ_URL"], since)
    on_primary = worker_queries_since(cluster.env["DATABASE_URL"], since)
    print(f"{misses} misses; pool connections that ran a statement since: {len(on_replica)} to the replica,"
          f" {len(on_primary)} to the primary")
    assert misses == len(users)
    assert any("FROM reconciliation_logs" in query for _, query in on_replica), on_replica
    assert all(name.endswith(" replica") for name, _ in on_replica), on_replica
    assert on_primary == [], on_primary


def test_a_lagging_replica_never_hides_a_commit(cluster, session):
    """Replay paused on the replica: a commit on the primary is answered (from the primary) at
    once and cached, never the replica's older view; after replay resumes, still the commit."""
    user = cluster.users[25]
    s.wait_until(lambda: status(cluster, session, user)[0] == "HIT" or None, timeout=10, interval=0.1,
                 what="the user's status cached")
    before = status(cluster, session, user)[1]
    cluster_sh("replay-pause")
    try:
        commit_sync(cluster, user, 881_000)
        seen = s.wait_until(lambda: status(cluster, session, user)[1] == before + 1 or None, timeout=5,
                            interval=0.01, what="the commit in the status view")
        answers = [status(cluster, session, user) for _ in range(50)]
        assert all(total == before + 1 for _, total in answers), answers
        assert answers[-1][0] == "HIT", answers[-5:]
        # The replica really is behind: it still shows the old count.
        with psycopg.connect(cluster.env["DATABASE_READ_URL"], autocommit=True, connect_timeout=5) as db:
            old = db.execute("SELECT count(*) FROM reconciliation_logs WHERE user_id = %s AND event_type = 'sync'",
                             (user,)).fetchone()[0]
        assert old == before, (old, before)
        assert seen
    finally:
        cluster_sh("replay-resume")
    assert all(total == before + 1 for _, total in (status(cluster, session, user) for _ in range(20)))


class Committer(s.ClientThreads):
    """The bot: a sync row for one user after another every 20 ms, so that views keep being
    recomputed (misses read from the replica) while the load runs."""

    def __init__(self, cluster):
        super().__init__(1)
        self.cluster = cluster
        self.commits = 0

    def run(self, index: int):
        with psycopg.connect(self.cluster.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as db:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                commit_sync(self.cluster, self.cluster.users[i % len(self.cluster.users)], 882_000 + i, db)
                self.commits += 1
                time.sleep(0.02)


def test_a_replica_cut_off_costs_no_request(cluster, session):
    """The replica's cable pulled under load while the bot commits (so views are recomputed):
    no request fails; a view whose query was on its way to the replica waits for
    tcp_user_timeout (1 s) and is then answered from the primary; once back, the replica is
    read from again."""
    with Committer(cluster) as committer:
        outcome = run_fault(cluster, "db2 (replica) link cut, bot committing", lambda: cluster_sh("cut", "db2"),
                            lambda: cluster_sh("restore", "db2"))
    result = outcome.load
    print(f"{committer.commits} commits during the run")
    assert committer.commits > 100
    assert result.failed == 0, result.describe()
    assert result.ok > 1000, result.describe()
    assert result.cache.get("MISS", 0) > 100, result.cache  # views were recomputed throughout

    def replica_used_again():
        since = server_now(cluster.env["DATABASE_URL"])
        for user in cluster.users[:10]:
            commit_sync(cluster, user, 883_000)
        time.sleep(0.3)
        for user in cluster.users[:10]:
            logs(cluster, session, user, next(LIMITS))
        return worker_queries_since(cluster.env["DATABASE_READ_URL"], since)
    s.wait_until(replica_used_again, timeout=30, interval=1, what="views read from the replica again")
