"""A user sees only their own rows, always (API.md "Authentication", "Caching").

Two users are given overlapping data (same tickets, same symbols) so that any query that
forgets the user would show it.
"""
import concurrent.futures as cf
import time

import requests

import support as s


def make_pair(make_user, rows):
    a, b = make_user(), make_user()
    rows.instrument("XAUUSD", 100)
    # A: 3 syncs, one diverging, one closed position, a critical guard, a 25 % drawdown.
    rows.sync(a, 100, age=100, entry_price=1000.0, current_price=1010.0)
    rows.sync(a, 200, age=90, matched=2, divergence_reason="A only")
    rows.sync(a, 300, age=80, status="failed", error_message="A failure")
    rows.close(a, 300, age=70)
    rows.guard(a, age=60, level="critical", symbol="AONLY")
    rows.snapshot(a, 7500.0, 10000.0)
    # B: the same ticket 100 with other prices, one sync, no guard, no snapshot.
    rows.sync(b, 100, age=50, entry_price=2000.0, current_price=1990.0)
    return a, b


def test_status_counts_only_own_rows(get, token, make_user, rows):
    a, b = make_pair(make_user, rows)
    sa = s.ok(get(s.STATUS, token(a)))
    sb = s.ok(get(s.STATUS, token(b)))
    assert (sa["total_syncs"], sb["total_syncs"]) == (3, 1)
    assert (sa["open_positions_count"], sb["open_positions_count"]) == (2, 1)
    assert (sa["divergences_detected"], sb["divergences_detected"]) == (1, 0)
    assert sa["error_message"] == "A failure" and sb["error_message"] is None
    assert sb["status"] == "healthy"
    assert len(sb["recent_events"]) == 1


def test_logs_show_only_own_rows(get, token, make_user, rows):
    a, b = make_pair(make_user, rows)
    la = s.ok(get(s.LOGS, token(a)))["events"]
    lb = s.ok(get(s.LOGS, token(b)))["events"]
    assert len(la) == 5 and len(lb) == 1
    assert not {e["id"] for e in la} & {e["id"] for e in lb}
    assert "A only" not in str(lb) and "AONLY" not in str(lb)


def test_positions_show_only_own(get, token, make_user, rows):
    a, b = make_pair(make_user, rows)
    pa = s.ok(get(s.OPEN, token(a)))
    pb = s.ok(get(s.OPEN, token(b)))
    assert sorted(p["ticket"] for p in pa["positions"]) == [100, 200]
    assert [(p["ticket"], p["entry_price"]) for p in pb["positions"]] == [(100, 2000.0)]
    assert pb["total_unrealized_pnl"] == -100.0   # (1990 - 2000) × 0.1 × 100
    assert pb["total_unrealized_pnl_pct"] is None  # A's snapshot is not B's


def test_position_detail_of_the_same_ticket_is_each_users_own(get, token, make_user, rows):
    a, b = make_pair(make_user, rows)
    assert s.ok(get(s.position_path(100), token(a)))["entry_price"] == 1000.0
    assert s.ok(get(s.position_path(100), token(b)))["entry_price"] == 2000.0
    for ticket in (200, 300):
        s.assert_error(get(s.position_path(ticket), token(b)), 404, "not_found")


def test_guards_show_only_own(get, token, make_user, rows):
    a, b = make_pair(make_user, rows)
    ga = s.ok(get(s.GUARDS, token(a)))
    gb = s.ok(get(s.GUARDS, token(b)))
    assert ga["system_status"] == "critical" and len(ga["market_guard_alerts"]) == 1
    assert gb["system_status"] == "healthy" and gb["market_guard_alerts"] == []
    assert gb["drawdown_guard"]["current_equity"] is None
    assert gb["any_positions_should_close"] is False


def test_unknown_user_sees_nothing_of_others(get, token, make_user, rows):
    """A valid token for a sub without a users row gets empty views, never someone's data."""
    make_pair(make_user, rows)
    ghost = s.new_uuid()
    tok = token(ghost)
    assert s.ok(get(s.LOGS, tok, params={"hours": "168", "limit": "500"}))["events"] == []
    assert s.ok(get(s.OPEN, tok))["positions"] == []
    assert s.ok(get(s.STATUS, tok))["total_syncs"] == 0
    s.assert_error(get(s.position_path(100), tok), 404, "not_found")


def test_concurrent_requests_of_many_users_never_cross(stack, token, make_user, rows):
    """Many users hitting the pool at once (MISS and HIT mixed): every answer is the
    requester's own — no state leaks between requests in a worker or through the cache."""
    users = []
    for i in range(6):
        uid = make_user()
        for n in range(i + 1):                     # user i has i+1 open positions
            rows.sync(uid, 1000 + n, age=30 + n, entry_price=1000.0 + i)
        users.append(uid)
    paths = [s.STATUS, s.OPEN, s.LOGS]
    jobs = [(uid, path) for _ in range(4) for uid in users for path in paths]
    tokens = {uid: token(uid) for uid in users}

    def fetch(job):
        uid, path = job
        with requests.Session() as session:
            for _ in range(8):
                resp = session.get(stack.base_url + path, headers=s.bearer(tokens[uid]), timeout=15)
                if resp.status_code != 429:
                    return uid, path, resp
                time.sleep(0.5)
            return uid, path, resp

    with cf.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(fetch, jobs))
    for uid, path, resp in results:
        body = s.ok(resp)
        assert body["user_id"] == uid, f"{path}: {uid} got {body['user_id']}"
        expected = users.index(uid) + 1
        if path == s.STATUS:
            assert body["total_syncs"] == expected
        elif path == s.OPEN:
            assert body["total_positions"] == expected
            assert {p["entry_price"] for p in body["positions"]} == {1000.0 + users.index(uid)}
        else:
            assert len(body["events"]) == expected
