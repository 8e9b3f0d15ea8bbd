"""Fixtures of the fault suite (Tests/Faults): the real stack under wrk load while a fault is
injected. Reuses Tests/Integration's helpers (support.py) and fixtures (conftest.py: stack,
stack_sh, db, token) so both suites read the same $RUN_DIR/stack.env.

Every case starts from a healthy stack (`healthy_stack`, autouse): health 200 with database
and cache ok, Postgres and memcached running, the pool at WORKERS workers. Each case records
a LoadResult; the session prints one line per case and writes them to
$RUN_DIR/fault-results.md, and after a whole run to Tests/Faults/results/latest.md
(FAULT_RESULTS=path to write there instead).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "Integration"
sys.path.insert(0, str(INTEGRATION))
sys.path.insert(0, str(HERE))

import support as s  # noqa: E402  (Tests/Integration/support.py)
import faultkit as c  # noqa: E402
from faultkit import (CONNECTIONS, LIMIT_KEYS, LIFTED_LIMITS, RESULTS, USERS, Pool,  # noqa: E402
                      run_stack_sh)
from load import LoadResult  # noqa: E402

_spec = importlib.util.spec_from_file_location("integration_conftest", INTEGRATION / "conftest.py")
_it = importlib.util.module_from_spec(_spec)
sys.modules["integration_conftest"] = _it
_spec.loader.exec_module(_it)

# Fixtures shared with the integration suite (registered here by name).
stack = _it.stack
stack_sh = _it.stack_sh
db = _it.db
token = _it.token

CONTEXT: dict = {}


@pytest.fixture(scope="session", autouse=True)
def lifted_rate_limits(stack):
    """Lifts the rate limits for the suite (nginx reload, not under load) and puts the
    recorded ones back afterwards. The fault cases measure the stack, not limit_req: with
    the test stack's limits one wrk address would be answered 429 at a few thousand
    requests per second. The limits themselves are tested in Tests/Integration."""
    saved = {k: stack.env[k] for k in LIMIT_KEYS if stack.env.get(k)}
    run_stack_sh("reload-nginx", env=LIFTED_LIMITS)
    time.sleep(1.0)   # old nginx workers finish; their zones are shared, the limits are new
    yield
    if saved:
        run_stack_sh("reload-nginx", env=saved)


@pytest.fixture(scope="session", autouse=True)
def short_cache_bound(stack, lifted_rate_limits):
    """The suite runs the pool with CACHE_TTL_SECONDS=2 (restored afterwards). Views are fresh
    by push invalidation whatever the bound, but the load has a fixed set of users and no
    writer: with the test stack's 60-s bound every request would be a hit and no case would
    reach Postgres. A 2-s bound makes Postgres carry a share of the load, as the bot's writes
    do in production."""
    saved = stack.env.get("CACHE_TTL_SECONDS", "5")
    c.stack_up(stack, CACHE_TTL_SECONDS="2", **LIFTED_LIMITS)
    yield
    c.stack_up(stack, CACHE_TTL_SECONDS=saved, **LIFTED_LIMITS)


@pytest.fixture(scope="session")
def pool(stack, stack_sh) -> Pool:
    p = Pool(stack_sh, int(stack.env.get("WORKERS", "4")))
    CONTEXT["workers"] = p.size
    try:
        CONTEXT["binary"] = os.readlink(f"/proc/{p.supervisor}/exe")
    except OSError:
        pass
    return p


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def load_users(stack):
    """USERS users, each with two open positions (tickets 1 and 2), a closed one (3), a
    guard row and an equity snapshot; returns [(uid, token)]. Made once per session."""
    import psycopg
    users = [s.new_uuid() for _ in range(USERS)]
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True, connect_timeout=5) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO users (id, email) SELECT u, 'fault-' || u || '@example.test'"
                " FROM unnest(%s::uuid[]) AS u", (users,))
            cur.execute("""
                INSERT INTO reconciliation_logs (user_id, event_type, status, mt5_position_id,
                    symbol, direction, volume, entry_price, current_price, matched, duration_ms,
                    close_reason, closed_price, pnl_gbp, created_at)
                SELECT u, e.event_type, 'success', e.ticket, 'XAUUSD', 'buy', 0.1, 1950.5,
                       1955.75, 1, 200, e.close_reason, e.closed_price, e.pnl_gbp,
                       now() - make_interval(secs => e.age)
                FROM unnest(%s::uuid[]) AS u,
                     (VALUES ('sync', 1, NULL, NULL::float8, NULL::float8, 90),
                             ('sync', 2, NULL, NULL, NULL, 60),
                             ('sync', 3, NULL, NULL, NULL, 50),
                             ('close', 3, 'take_profit', 1960.0, 95.0, 40))
                       AS e(event_type, ticket, close_reason, closed_price, pnl_gbp, age)""",
                (users,))
            cur.execute("""
                INSERT INTO reconciliation_logs (user_id, event_type, status, symbol,
                    guard_condition, guard_level, price_gap_pct, created_at)
                SELECT u, 'guard_trigger', 'success', 'XAUUSD', 'price_gap', 'warning', 2.5,
                       now() - interval '30 seconds'
                FROM unnest(%s::uuid[]) AS u""", (users,))
            cur.execute("""
                INSERT INTO equity_snapshots (user_id, equity, peak_equity, recorded_at)
                SELECT u, 9500, 10000, now() - interval '20 seconds'
                FROM unnest(%s::uuid[]) AS u""", (users,))
    secret = stack.secret
    now = int(time.time())
    return [(u, s.make_jwt({"sub": u, "iat": now, "exp": now + 4 * 3600}, secret)) for u in users]


VIEW_PATHS = [s.STATUS, s.OPEN, s.LOGS + "?hours=24&limit=50", s.GUARDS,
              s.position_path(1), s.position_path(3)]


@pytest.fixture(scope="session")
def mix(load_users) -> list[tuple[str, str]]:
    """(path, token) pairs: every view for every user, interleaved so that consecutive
    requests are different users (each token stays far below its rate limit)."""
    return [(path, tok) for path in VIEW_PATHS for _, tok in load_users]


# --------------------------------------------------------------------------- health


def stack_state(stack, stack_sh, pool) -> str | None:
    """None when the stack is whole; else what is wrong."""
    try:
        r = requests.get(stack.base_url + s.HEALTH, timeout=3)
    except requests.RequestException as exc:
        return f"health: {exc!r}"
    if r.status_code != 200 or r.json() != {"status": "ok", "database": "ok", "cache": "ok"}:
        return f"health {r.status_code} {r.text[:200]}"
    try:
        workers = pool.workers()
    except AssertionError as exc:
        return f"pool: {exc}"
    if len(workers) != pool.size:
        return f"pool has {len(workers)} workers, want {pool.size}"
    return None


@pytest.fixture(autouse=True)
def healthy_stack(stack, stack_sh, pool):
    """Each case starts from a whole stack and leaves one behind (or says what is broken)."""
    s.wait_until(lambda: stack_state(stack, stack_sh, pool) is None, timeout=30, interval=0.25,
                 what="a healthy stack before the case")
    time.sleep(1.0)   # let the previous case's rate-limit buckets drain
    yield
    problem = None
    try:
        s.wait_until(lambda: stack_state(stack, stack_sh, pool) is None, timeout=30,
                     interval=0.25, what="a healthy stack after the case")
    except AssertionError as exc:
        problem = str(exc)
    assert problem is None, problem


# --------------------------------------------------------------------------- results


@pytest.fixture
def record():
    """record(result, **notes): keeps a case's numbers for the summary and results file, with
    the upstream failures nginx logged since the case began (faultkit.UPSTREAM_PROBLEMS)."""
    error_log = c.NginxErrorLog()

    def _record(result: LoadResult, **notes):
        result.notes.update(notes)
        problems = error_log.upstream_problems()
        result.notes["upstream_errors"] = len(problems)
        if problems:
            result.notes["upstream_error_sample"] = problems[0][:200]
        RESULTS.append(result)
        print("\n" + result.describe())
        return result
    return _record


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("fault cases under wrk load")
    for r in RESULTS:
        tr.write_line(r.describe())
    # Always into RUN_DIR; into the repository (results/latest.md, committed as the record of
    # the measured numbers) only after a whole run, or where FAULT_RESULTS says.
    cfg = tr.config
    whole = not cfg.getoption("keyword") and not cfg.getoption("markexpr") and \
        len(RESULTS) == len(tr.stats.get("passed", [])) + len(tr.stats.get("failed", [])) and \
        len(RESULTS) >= 10
    paths = [s.run_dir() / "fault-results.md"]
    if os.environ.get("FAULT_RESULTS"):
        paths.append(Path(os.environ["FAULT_RESULTS"]))
    elif whole:
        paths.append(HERE / "results" / "latest.md")
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_markdown(RESULTS))
            path.with_suffix(".json").write_text(json.dumps(
                [{"case": r.name, "requests": r.requests, "duration_s": round(r.duration_s, 2),
                  "non_2xx": r.non2xx, "socket_errors": r.socket_errors, "failed": r.failed,
                  "statuses": r.statuses, "x_cache": r.cache, "errors": r.errors,
                  "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms, "notes": r.notes}
                 for r in RESULTS], indent=1, default=str) + "\n")
            tr.write_line(f"(written to {path})")
        except OSError as exc:
            tr.write_line(f"(could not write {path}: {exc})")


def _markdown(results: list[LoadResult]) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    lines = [
        "# Fault suite: last run",
        "",
        f"Written by `make test-faults` (Tests/Faults) at {when}; wrk {CONNECTIONS} connections, "
        f"{USERS} users' tokens round-robin over the views; {CONTEXT.get('workers', '?')} workers "
        f"({'/'.join(CONTEXT.get('binary', '?').split('/')[-2:])} build), {os.cpu_count()} CPUs.",
        "",
        "| case | requests | req/s | non-2xx | socket errors | statuses | X-Cache | p99 ms | max ms | notes |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---|",
    ]
    for r in results:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(r.statuses.items()))
        cache = " ".join(f"{k}:{v}" for k, v in sorted(r.cache.items()))
        notes = "; ".join(f"{k}={v}" for k, v in r.notes.items())
        lines.append(f"| {r.name} | {r.requests} | {r.rps:.0f} | {r.non2xx} | {r.socket_errors} "
                     f"| {codes} | {cache} | {r.p99_ms:.1f} | {r.max_ms:.1f} | {notes} |")
    return "\n".join(lines) + "\n"
