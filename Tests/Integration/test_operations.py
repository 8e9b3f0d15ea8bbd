"""The pool's operations pages through nginx: /metrics (Prometheus text), /status (php-fpm's
status page) and the slow log (docs/OPERATIONS.md)."""
from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import requests

import support as s

SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)$')


def scrape(stack) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics: {(name, frozenset(labels)): value}; checks the text format."""
    resp = requests.get(stack.base_url + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    typed = set()
    for line in resp.text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in typed, f"{name} typed twice"
            typed.add(name)
            if kind == "counter":
                assert name.endswith("_total"), name
            continue
        if not line or line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.smoke
def test_metrics_count_each_request_by_route_and_status(stack, get, token, make_user):
    user = make_user()
    t = token(user)
    before = scrape(stack)
    n = 7
    for _ in range(n):
        assert get("/api/v1/positions/open", t).status_code == 200
    assert get("/api/v1/positions/open", "not-a-jwt").status_code == 401
    after = scrape(stack)

    route = "/api/v1/positions/open"
    assert value(after, "trading_api_requests_total", route=route, code="200") \
        - value(before, "trading_api_requests_total", route=route, code="200") == n
    assert value(after, "trading_api_requests_total", route=route, code="401") \
        - value(before, "trading_api_requests_total", route=route, code="401") == 1
    assert value(after, "trading_api_token_rejections_total", reason="malformed") \
        - value(before, "trading_api_token_rejections_total", reason="malformed") == 1
    # One miss for the new user's view, then hits.
    lookups = {o: value(after, "trading_api_cache_lookups_total", outcome=o)
               - value(before, "trading_api_cache_lookups_total", outcome=o) for o in ("hit", "miss", "stale", "bypass")}
    assert lookups["miss"] >= 1 and lookups["hit"] >= n - 1 and sum(lookups.values()) == n, lookups
    # The latency histogram moved by the same count, its buckets are cumulative and end at +Inf.
    count = "trading_api_request_duration_seconds_count"
    assert value(after, count, route=route) - value(before, count, route=route) == n + 1
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                     if k[0] == "trading_api_request_duration_seconds_bucket" and dict(k[1])["route"] == route)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1] == (float("inf"), value(after, count, route=route))
    # nginx's start time reached the worker: the queue wait was measured.
    assert value(after, "trading_api_fastcgi_queue_wait_seconds_count") \
        - value(before, "trading_api_fastcgi_queue_wait_seconds_count") >= n + 1


def test_metrics_report_the_pool_and_the_change_listener(stack, rows, make_user):
    before = scrape(stack)
    assert value(before, "trading_api_workers") >= 1
    assert value(before, "trading_api_fastcgi_listen_queue_limit") > 0
    assert value(before, "trading_api_fastcgi_listen_queue") >= 0
    assert value(before, "trading_api_worker_starts_total") >= value(before, "trading_api_workers")
    assert 0 < value(before, "trading_api_pool_start_time_seconds") <= time.time()

    user = make_user()
    rows.snapshot(user, 1000, 1000)  # waits until the change listener replaced the user's generation
    after = scrape(stack)
    assert value(after, "trading_api_invalidations_total", scope="user") \
        - value(before, "trading_api_invalidations_total", scope="user") >= 1
    delays = "trading_api_invalidation_delay_seconds"
    assert value(after, delays + "_count") - value(before, delays + "_count") >= 1
    # A commit reaches the cache in well under a second here.
    assert value(after, delays + "_bucket", le="1") - value(before, delays + "_bucket", le="1") >= 1


def test_status_page_lists_each_worker_in_text_and_json(stack, get):
    resp = requests.get(stack.base_url + "/status?json", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    status = resp.json()
    assert status["process_manager"] == "static"
    assert status["total_processes"] == len(status["processes"]) >= 1
    assert status["listen_queue_len"] > 0 and status["listen_queue"] >= 0
    assert status["active_loops"] >= 1  # this request
    pids = {p["pid"] for p in status["processes"]}
    assert pids == set(s.stack_pids()["worker"])
    for p in status["processes"]:
        assert p["state"] in ("Idle", "Running")
        assert p["memory_bytes"] > 1_000_000 and p["requests"] >= 0 and p["start_since"] >= 0
    me = [r for p in status["processes"] for r in p["current_requests"] if r["request_id"] == resp.headers["X-Request-Id"]]
    assert me and me[0]["request_uri"] == "/status" and me[0]["method"] == "GET"

    text = requests.get(stack.base_url + "/status", timeout=10)
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    fields = dict(re.findall(r"^([a-z ]+):\s+(.*)$", text.text, re.M))
    assert fields["process manager"] == "static" and int(fields["accepted conn"]) > 0
    assert text.text.count("************************") == status["total_processes"]


@pytest.mark.smoke
def test_operations_pages_refuse_other_addresses(stack):
    """OPS_ALLOW defaults to loopback's 127.0.0.1 and ::1 only: 127.0.0.2 is refused."""
    for path in ("/metrics", "/status"):
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", int(stack["HTTP_PORT"])), timeout=5,
                                      source_address=("127.0.0.2", 0)) as sock:
            sock.sendall(head)
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        assert raw.startswith(b"HTTP/1.1 403"), raw[:200]
        assert b'"error":"forbidden"' in raw and b"trading_api_" not in raw


def test_request_held_by_a_table_lock_shows_on_the_status_page_and_in_the_slow_log(stack, db, get, token, make_user):
    user = make_user()
    t = token(user)
    log = s.run_dir() / "logs" / "pool.log"
    log_start = log.stat().st_size
    import psycopg
    holder = psycopg.connect(stack["DATABASE_URL"])
    result = {}
    try:
        holder.execute("LOCK TABLE reconciliation_logs IN ACCESS EXCLUSIVE MODE")  # opens a transaction
        thread = threading.Thread(target=lambda: result.update(resp=get("/api/v1/reconciliation/status", t)))
        thread.start()

        def held():
            status = requests.get(stack.base_url + "/status?json", timeout=5).json()
            return [r for p in status["processes"] for r in p["current_requests"]
                    if r["request_uri"] == "/api/v1/reconciliation/status" and r["duration_ms"] >= 300]
        running = s.wait_until(held, timeout=5, interval=0.05, what="the held request on /status")
        assert running[0]["phase"] == "query" and running[0]["method"] == "GET"
        time.sleep(1.0)  # past SLOW_REQUEST_MS (1000 ms by default)
    finally:
        holder.rollback()
        holder.close()
    thread.join(10)
    resp = result["resp"]
    assert resp.status_code == 200
    request_id = resp.headers["X-Request-Id"]

    def logged():
        with open(log, "rb") as f:
            f.seek(log_start)
            return [line for line in f.read().decode(errors="replace").splitlines()
                    if "slow request" in line and request_id in line]
    line = s.wait_until(logged, timeout=5, what="the slow log line")[0]
    assert f"user={user}" in line and "route=/api/v1/reconciliation/status" in line and "status=200" in line
    query_ms = float(re.search(r"query_ms=([0-9.]+)", line).group(1))
    assert query_ms >= 1000, line
    for phase in ("route", "auth", "cache", "render"):
        assert re.search(rf"{phase}_ms=[0-9]+\.[0-9]{{3}}", line), line


@pytest.mark.faults
def test_counters_survive_a_killed_worker(stack, get, token, make_user):
    """A worker's counts join the retired totals when it ends: no counter goes down."""
    t = token(make_user())
    for _ in range(5):
        get("/api/v1/guards/status", t)
    before = scrape(stack)
    victim = s.stack_pids()["worker"][0]
    import os
    import signal
    os.kill(victim, signal.SIGKILL)
    s.wait_until(lambda: victim not in s.stack_pids()["worker"]
                 and len(s.stack_pids()["worker"]) == value(before, "trading_api_workers"), timeout=10,
                 what="the killed worker replaced")
    after = scrape(stack)
    assert value(after, "trading_api_worker_exits_total", cause="signal") \
        - value(before, "trading_api_worker_exits_total", cause="signal") == 1
    assert value(after, "trading_api_worker_starts_total") - value(before, "trading_api_worker_starts_total") == 1
    for key, v in before.items():
        if key[0].endswith(("_total", "_count", "_bucket", "_sum")):
            assert after.get(key, 0.0) >= v, f"{key} went down: {v} -> {after.get(key)}"
