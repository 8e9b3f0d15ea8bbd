"""Case 5: a slow query. The test holds `LOCK TABLE reconciliation_logs IN ACCESS EXCLUSIVE
MODE` in a transaction for longer than the workers' statement_timeout.

- Alone: an uncached request ends at the statement timeout (not at nginx's 10 s read
  timeout, not never) with the worker's JSON 503 `unavailable` (or nginx's 504 `timeout`),
  and once the lock is gone every worker serves the next requests normally.
- Under wrk load: while the lock is held every answer is a 200 or that JSON 503, never a
  502/504, a socket error or a hang; afterwards all is normal; no worker was restarted.
"""
import time

import psycopg

from load import Load

import faultkit as c
import support as s

T = c.STATEMENT_TIMEOUT_S
HOLD_S = T + 1.5


class TableLock:
    """ACCESS EXCLUSIVE lock on reconciliation_logs, held in a transaction until release()."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=False, connect_timeout=5)

    def __enter__(self):
        self.conn.execute("SET lock_timeout = '5s'")
        self.conn.execute("LOCK TABLE reconciliation_logs IN ACCESS EXCLUSIVE MODE")
        return self

    def release(self):
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __exit__(self, *exc):
        self.release()


def blocked_workers(db) -> int:
    """Worker sessions waiting for a lock right now."""
    return db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'trading-api worker%%'"
        " AND wait_event_type = 'Lock'").fetchone()[0]


def test_slow_query_ends_at_statement_timeout(stack, pool, mix, db, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()

    # --- alone: one uncached request against the locked table
    with TableLock(stack["DATABASE_URL"]):
        resp, took = c.fresh_get(stack, s.STATUS, c.fresh_token(stack), timeout=20)
    s.assert_error(resp, (503, 504), None, secrets=stack.secrets)
    if resp.status_code == 503:
        assert resp.json()["error"] == "unavailable"
        s.assert_retry_after(resp)
    else:
        assert resp.json()["error"] == "timeout"
    assert T - 0.2 <= took <= T + 1.0, f"answered after {took:.2f}s, statement timeout {T}s"
    after_lock = []
    for _ in range(3 * pool.size):      # every worker, the one that timed out included
        nxt, nxt_took = c.fresh_get(stack, s.STATUS, c.fresh_token(stack))
        after_lock.append((nxt.status_code, round(nxt_took, 3)))
        assert nxt.status_code == 200 and nxt_took < 1.0, (nxt.status_code, nxt_took, nxt.text)
    c.no_restart(before, pool.workers(sup), log)   # not after a statement timeout either

    # --- under load: the lock held HOLD_S seconds in the middle of the run
    most_blocked = 0
    with Load(stack.base_url, mix, name=f"5 table lock {HOLD_S:.1f} s (statement timeout {T:g} s)",
              duration=10, connections=c.CONNECTIONS) as load:
        load.sleep_until(2.0)
        with TableLock(stack["DATABASE_URL"]):
            locked_at = time.monotonic()
            while time.monotonic() - locked_at < HOLD_S:
                most_blocked = max(most_blocked, blocked_workers(db))
                time.sleep(0.1)
    after = pool.workers(sup)
    events = log.events()
    r = record(load.result, lock_held_s=HOLD_S, statement_timeout_s=T,
               alone_status=resp.status_code, alone_took_s=round(took, 3),
               workers_blocked_max=most_blocked, answered_503=load.result.count(503),
               workers_restarted=len(events.crashed), workers_recycled=len(events.recycled))

    assert most_blocked >= 1, "no worker waited on the lock: the load did not reach Postgres"
    assert r.socket_errors == 0, r.describe()
    c.assert_no_upstream_problems(r)
    assert set(r.statuses) <= {200, 503}, r.describe()
    assert r.unavailable_json == r.count(503), r.describe()
    assert r.max_ms < (HOLD_S + T + 2.0) * 1000, r.describe()
    assert pool.supervisor == sup
    c.no_restart(before, after, log)          # no worker is restarted for slow queries
    for _ in range(2 * pool.size):
        nxt, nxt_took = c.fresh_get(stack, s.STATUS, c.fresh_token(stack))
        assert nxt.status_code == 200 and nxt_took < 1.0, (nxt.status_code, nxt_took)
