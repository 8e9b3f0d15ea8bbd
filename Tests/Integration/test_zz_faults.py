"""memcached and Postgres going away and coming back, without restarting the stack.

- memcached unreachable: the service answers from Postgres with X-Cache: BYPASS, health
  says cache "unavailable" with 200, and caching resumes once memcached is back.
- database down: health 503 {"status":"unavailable","database":"unavailable",...}; a view
  that is not cached is 503 `unavailable` with Retry-After, answered quickly; recovery
  within seconds once Postgres is back.

Runs last (marker `faults`, and the file name); every test restores what it stopped in a
`finally` and waits until the service is whole again.
"""
import time

import pytest
import requests

import support as s

pytestmark = pytest.mark.faults

QUICK = 3.0  # seconds: an outage is answered, not waited out

# Request ids of the 503s answered by workers while Postgres was down (see the log test).
UNAVAILABLE_IDS: list[str] = []


def timed_get(stack, path, tok=None, params=None):
    headers = s.bearer(tok) if tok else {}
    started = time.monotonic()
    resp = requests.get(stack.base_url + path, headers=headers, params=params, timeout=15)
    return resp, time.monotonic() - started


def cache_of(resp):
    return resp.headers.get("X-Cache")


# --------------------------------------------------------------------------- memcached


def test_memcached_down_is_bypass_then_recovers(stack, stack_sh, get, token, make_user, rows):
    """memcached unreachable: 200 with X-Cache BYPASS from Postgres (never fails for want of a
    cache); then mc-start: back to MISS/HIT within a few seconds."""
    uid = make_user()
    rows.sync(uid, 1, age=30)
    rows.guard(uid, age=20)
    rows.snapshot(uid, 9000.0, 10000.0)
    tok = token(uid)
    assert cache_of(get(s.STATUS, tok)) == "MISS"

    stack_sh("mc-stop")
    try:
        for path in (s.STATUS, s.LOGS, s.OPEN, s.position_path(1), s.GUARDS, s.STATUS):
            resp, took = timed_get(stack, path, tok)
            body = s.ok(resp)
            assert body["ticket"] == 1 if path == s.position_path(1) else body["user_id"] == uid
            assert cache_of(resp) == "BYPASS", f"{path}: X-Cache {cache_of(resp)!r}"
            assert took < QUICK, f"{path} took {took:.1f}s with memcached down"

        rows.sync(uid, 2, age=5)          # no cache in the way: the next answer shows it
        resp, _ = timed_get(stack, s.STATUS, tok)
        assert cache_of(resp) == "BYPASS" and s.ok(resp)["total_syncs"] == 2

        health, took = timed_get(stack, s.HEALTH)
        body = s.ok(health)
        assert set(body) == {"status", "database", "cache"}
        assert (body["database"], body["cache"]) == ("ok", "unavailable")
        assert took < QUICK
    finally:
        stack_sh("mc-start")

    def caching_again():
        fresh = token(s.new_uuid())
        first, _ = timed_get(stack, s.STATUS, fresh)
        second, _ = timed_get(stack, s.STATUS, fresh)
        return (cache_of(first), cache_of(second)) == ("MISS", "HIT")

    s.wait_until(caching_again, timeout=20, interval=0.5, what="MISS then HIT after mc-start")
    s.wait_until(lambda: requests.get(stack.base_url + s.HEALTH, timeout=5).json()
                 == {"status": "ok", "database": "ok", "cache": "ok"},
                 timeout=20, what="health to report the cache ok again")


def test_every_worker_caches_again_after_memcached_returns(stack, token):
    """After the outage no worker keeps bypassing: consecutive fresh users are MISS, then HIT."""
    def all_caching():
        for _ in range(20):
            fresh = token(s.new_uuid())
            first, _ = timed_get(stack, s.OPEN, fresh)
            if cache_of(first) != "MISS" or first.status_code != 200:
                return False
        return True

    s.wait_until(all_caching, timeout=20, interval=0.5, what="20 consecutive MISSes")


# --------------------------------------------------------------------------- Postgres


def test_postgres_down_is_503_then_recovers(stack, stack_sh, token):
    """Database down: health 503 unavailable; an uncached view 503 `unavailable` JSON with
    Retry-After, quickly; Postgres back: service back within seconds, no restart."""
    stack_sh("pg-stop")
    try:
        def health_down():
            resp, took = timed_get(stack, s.HEALTH)
            assert took < QUICK, f"health took {took:.1f}s with Postgres down"
            return [resp] if resp.status_code == 503 else None   # (a 503 Response is falsy)

        [health] = s.wait_until(health_down, timeout=10, interval=0.25,
                                what="health to report 503 after pg-stop")
        s.assert_json_response(health)
        body = health.json()
        assert set(body) == {"status", "database", "cache"}, body
        assert (body["status"], body["database"]) == ("unavailable", "unavailable")
        s.assert_no_leak(health.text, stack.secrets)
        # memcached is up all along: the cache reads ok (a ping may time out once, 20 ms, while
        # Postgres shuts down on this 2-core machine; a second look settles it).
        s.wait_until(lambda: requests.get(stack.base_url + s.HEALTH, timeout=5).json()
                     == {"status": "unavailable", "database": "unavailable", "cache": "ok"},
                     timeout=5, interval=0.1, what="health to report the cache ok while Postgres is down")

        for path in (s.STATUS, s.LOGS, s.OPEN, s.position_path(1), s.GUARDS):
            for _ in range(3):                           # several workers, each must say so
                resp, took = timed_get(stack, path, token(s.new_uuid()))
                s.assert_error(resp, 503, "unavailable", secrets=stack.secrets)
                s.assert_retry_after(resp)
                UNAVAILABLE_IDS.append(resp.headers["X-Request-Id"])
                assert took < QUICK, f"{path} took {took:.1f}s with Postgres down"

        # Validation and auth need no database: still 400 / 401.
        resp, _ = timed_get(stack, s.LOGS, token(s.new_uuid()), params={"hours": "0"})
        s.assert_error(resp, 400, "bad_request")
        resp, _ = timed_get(stack, s.STATUS)
        s.assert_error(resp, 401, "unauthorized")
    finally:
        stack_sh("pg-start")

    def service_back():
        health = requests.get(stack.base_url + s.HEALTH, timeout=5)
        view = requests.get(stack.base_url + s.STATUS, headers=s.bearer(token(s.new_uuid())),
                            timeout=5)
        return health.status_code == 200 and view.status_code == 200

    s.wait_until(service_back, timeout=20, interval=0.5, what="the service to recover after pg-start")


def test_every_worker_reconnects_after_postgres_returns(stack, token, make_user, rows):
    """After the restart every worker serves from Postgres again: 40 uncached requests in a
    row (fresh users with rows) all answer 200 with their own data. A request loop that failed
    to connect during the outage answers 503 for 250 ms more before it tries again
    (PostgresConnection reconnectIntervalMilliseconds): that long is waited first."""
    time.sleep(0.3)
    with requests.Session() as session:
        for i in range(40):
            uid = make_user()
            rows.sync(uid, 1000 + i, age=10)
            resp = session.get(stack.base_url + s.OPEN, headers=s.bearer(token(uid)), timeout=10)
            body = s.ok(resp)
            assert [p["ticket"] for p in body["positions"]] == [1000 + i]
    health = requests.get(stack.base_url + s.HEALTH, timeout=5)
    assert s.ok(health) == {"status": "ok", "database": "ok", "cache": "ok"}


def test_worker_logs_carry_nginx_request_id():
    """X-Request-Id is nginx's $request_id, passed to the worker and written to its logs:
    the workers' log lines about the 503s above name those ids. (Looks in the *.log files
    under RUN_DIR that are not nginx's own.)"""
    assert UNAVAILABLE_IDS, "no 503 request ids were recorded: run this module whole " \
        "(the Postgres-down test before it records them)"
    logs = [p for p in s.run_dir().rglob("*.log") if "nginx" not in p.name and p.is_file()]
    assert logs, f"no worker log files under {s.run_dir()}"

    def logged():
        text = "".join(p.read_text(errors="replace") for p in logs)
        return [rid for rid in UNAVAILABLE_IDS if rid in text]

    found = s.wait_until(logged, timeout=5, what="a 503's request id in the worker logs")
    assert found
