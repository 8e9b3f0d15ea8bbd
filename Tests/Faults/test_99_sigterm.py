"""Case 2 (second half), run last because it stops the pool: SIGTERM to the supervisor
mid-load.

- Requests in flight finish: the test holds a lock on reconciliation_logs so that every
  worker is inside a request (one probe of the test's, the others wrk's uncached views, all
  waiting on Postgres, seen in pg_stat_activity) when SIGTERM arrives; the lock is released
  0.3 s later and each of those requests is answered by its worker (200), not cut off.
- The supervisor and every worker exit within a bounded time (the pool's graceful stop is
  10 s, then SIGKILL; measured here), and nothing of the pool's session is left: no
  process, nobody accepting on the FastCGI socket.
- Under wrk, every request nginx could not hand to the pool any more is nginx's JSON 502
  (no socket errors: nginx stays up); the counts are reported.
Afterwards the pool is started again (`stack.sh up` with the stack's recorded settings)
and the stack is healthy.
"""
import os
import signal
import socket
import threading
import time

import pytest

from load import Load

import faultkit as c
import support as s
from test_05_slow_query import TableLock, blocked_workers

EXIT_BOUND_S = 11.0     # the supervisor's graceful stop timeout (10 s) + reaping


def accepting(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def fcgi_socket_path(stack) -> str:
    return f"/run/trading-api-fcgi-{stack['HTTP_PORT']}/fcgi.sock"


@pytest.fixture
def pool_restarted(stack):
    yield
    c.stack_up(stack)


def test_sigterm_mid_load(stack, pool, mix, db, record, pool_restarted):
    sup = pool.supervisor
    workers = pool.wait_full()
    members = c.session_members(sup)
    assert members == workers | {sup}, f"pool session {sorted(members)} != {sorted(workers | {sup})}"
    assert accepting(fcgi_socket_path(stack))

    probe: dict = {}
    exited_s = None
    lock = TableLock(stack["DATABASE_URL"]).__enter__()
    try:
        def in_flight_request():
            try:
                probe["resp"], probe["took"] = c.fresh_get(stack, s.STATUS, c.fresh_token(stack),
                                                          timeout=30)
            except Exception as exc:  # noqa: BLE001 - asserted below
                probe["error"] = exc

        prober = threading.Thread(target=in_flight_request, daemon=True)
        prober.start()
        s.wait_until(lambda: blocked_workers(db) >= 1, timeout=3, interval=0.02,
                     what="the probe request to wait on the lock inside a worker")
        with Load(stack.base_url, mix, name="2b SIGTERM (pool stops)", duration=4,
                  connections=c.CONNECTIONS) as load:
            # Every worker is now inside a request: the probe and wrk's uncached ones wait
            # on the lock; wrk's other requests queue in the socket's backlog.
            s.wait_until(lambda: blocked_workers(db) >= pool.size, timeout=3, interval=0.02,
                         what="every worker to be inside a request waiting on the lock")
            in_flight = blocked_workers(db)
            os.kill(sup, signal.SIGTERM)
            sent = time.monotonic()
            time.sleep(0.3)
            lock.release()
            while time.monotonic() - sent < EXIT_BOUND_S + 5:
                if not c.session_members(sup):
                    exited_s = time.monotonic() - sent
                    break
                time.sleep(0.02)
        prober.join(timeout=30)
    finally:
        lock.release()
    left = c.session_members(sup)
    r = record(load.result, exited_in_s=None if exited_s is None else round(exited_s, 3),
               in_flight_probe=probe.get("resp").status_code if "resp" in probe else repr(probe.get("error")),
               in_flight_at_sigterm=in_flight, answered_200=load.result.count(200),
               answered_502=load.result.count(502), processes_left=len(left))

    assert "resp" in probe, f"the in-flight request failed: {probe.get('error')!r}"
    assert probe["resp"].status_code == 200, \
        f"the request in flight at SIGTERM was not finished: {probe['resp'].status_code} {probe['resp'].text}"
    assert exited_s is not None and not left, f"still running after SIGTERM: {sorted(left)}"
    assert exited_s <= EXIT_BOUND_S, f"the pool took {exited_s:.2f}s to exit"
    assert not accepting(fcgi_socket_path(stack)), "something still accepts on the FastCGI socket"
    assert r.socket_errors == 0, r.describe()
    assert set(r.statuses) <= {200, 502}, r.describe()
    assert r.error_json == r.non2xx, "every 502 is nginx's JSON body"
    # The other workers' requests in flight (wrk's) were finished too.
    assert r.count(200) >= in_flight - 1, r.describe()
