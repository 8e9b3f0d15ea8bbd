"""Case 3: Postgres stopped for 5 s mid-load, then started.

While it is down every request is answered quickly: a cached view (200, X-Cache HIT) or the
worker's 503 `unavailable` JSON with Retry-After — no hang (every answer within the connect
timeout, PG_CONNECT_TIMEOUT_SECONDS, default 2 s), no 502/504, no socket error. Once
Postgres answers again (`pg_ctl start -w` has returned) the service is whole within 2 s,
and no worker was restarted for it.
"""
import threading
import time

from load import Load

import faultkit as c
import support as s

DOWN_S = 5.0
RECOVERY_BOUND_S = 2.0
CONNECT_TIMEOUT_S = 2.0


def test_postgres_down_5s_mid_load(stack, pool, mix, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()
    probes: list = []       # (status, seconds, body) of uncached requests during the outage
    recovered_s = None
    stop_probing = threading.Event()

    def probe_while_down():
        while not stop_probing.is_set():
            try:
                resp, took = c.fresh_get(stack, s.STATUS, c.fresh_token(stack), timeout=10)
                probes.append((resp.status_code, took, resp))
            except Exception as exc:  # noqa: BLE001 - recorded, asserted below
                probes.append((None, None, exc))
            time.sleep(0.2)

    with Load(stack.base_url, mix, name="3 Postgres down 5 s", duration=14,
              connections=c.CONNECTIONS) as load:
        load.sleep_until(2.0)
        c.run_stack_sh("pg-stop")
        stopped_at = time.monotonic()
        prober = threading.Thread(target=probe_while_down, daemon=True)
        prober.start()
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - stopped_at)))
        stop_probing.set()
        prober.join(timeout=15)
        c.run_stack_sh("pg-start")              # pg_ctl start -w: returns once it accepts
        answering_at = time.monotonic()
        while time.monotonic() - answering_at < 10:
            resp, _ = c.fresh_get(stack, s.STATUS, c.fresh_token(stack), timeout=5)
            if resp.status_code == 200:
                recovered_s = time.monotonic() - answering_at
                break
            time.sleep(0.05)
    after = pool.workers(sup)
    events = log.events()
    r = record(load.result, down_s=DOWN_S,
               recovered_in_s=None if recovered_s is None else round(recovered_s, 3),
               answered_503=load.result.count(503),
               probe_max_s=round(max((p[1] for p in probes if p[1] is not None), default=0), 3),
               workers_restarted=len(events.crashed), workers_recycled=len(events.recycled))

    assert recovered_s is not None, "the service did not recover within 10 s of pg-start"
    assert recovered_s <= RECOVERY_BOUND_S, f"recovery took {recovered_s:.2f}s"
    assert pool.supervisor == sup
    c.no_restart(before, after, log)

    # Every answer under load: 200 (cached or after recovery) or 503 `unavailable` JSON.
    assert r.socket_errors == 0, r.describe()
    c.assert_no_upstream_problems(r)
    assert set(r.statuses) <= {200, 503}, r.describe()
    assert r.count(503) > 0, "no request noticed that Postgres was down"
    assert r.unavailable_json == r.count(503), "every 503 is the `unavailable` JSON body"
    assert r.max_ms <= CONNECT_TIMEOUT_S * 1000 + 500, f"a request hung: {r.describe()}"

    # The uncached probes while it was down: 503 unavailable JSON with Retry-After, quick.
    assert probes, "no probe ran while Postgres was down"
    for status, took, resp in probes:
        assert status is not None, f"probe failed: {resp!r}"
        assert took <= CONNECT_TIMEOUT_S + 0.5, f"probe took {took:.2f}s"
        if status != 200:          # the last probes may already see Postgres back
            s.assert_error(resp, 503, "unavailable", secrets=stack.secrets)
            s.assert_retry_after(resp)
    assert any(p[0] == 503 for p in probes)
