"""Caching: each view is cached per user (and per query parameter) in memcached, cache-aside.
Responses carry X-Cache: HIT, MISS or BYPASS. Unknown parameters are not part of the cache
key. No response may ever reach a user other than the one it was computed for. (Freshness:
test_freshness.py; memcached down → BYPASS: test_zz_faults.py.)
"""
import time

import pytest

import support as s

VIEWS = {
    "status": (s.STATUS, None),
    "logs": (s.LOGS, None),
    "open": (s.OPEN, None),
    "detail": (s.position_path(8001), None),
    "guards": (s.GUARDS, None),
}


def seed(rows, uid, price=1955.75):
    """Something in every view: a position (ticket 8001), a guard row, a snapshot."""
    rows.sync(uid, 8001, age=30, current_price=price)
    rows.guard(uid, age=20)
    rows.snapshot(uid, 9000.0, 10000.0)


def cache_of(resp):
    value = resp.headers.get("X-Cache")
    assert value in ("HIT", "MISS", "BYPASS"), f"X-Cache {value!r} on {resp.url}"
    return value


@pytest.mark.parametrize("view", list(VIEWS))
def test_miss_then_hit_with_identical_body(get, token, make_user, rows, view):
    """First request MISS, the next HIT with the very same body."""
    uid = make_user()
    seed(rows, uid)
    path, params = VIEWS[view]
    tok = token(uid)
    first = get(path, tok, params=params)
    second = get(path, tok, params=params)
    s.ok(first), s.ok(second)
    assert (cache_of(first), cache_of(second)) == ("MISS", "HIT")
    assert second.content == first.content
    assert second.headers["X-Request-Id"] != first.headers["X-Request-Id"]


def test_query_parameters_are_separate_entries(get, token, make_user, rows):
    """Cached per query parameter: different values are different entries with their own bodies."""
    uid = make_user()
    rows.sync(uid, 1, age=90 * 60, symbol="EURUSD", current_price=1.1, entry_price=1.09)
    rows.sync(uid, 2, age=30, symbol="XAUUSD")
    tok = token(uid)

    h1 = get(s.LOGS, tok, params={"hours": "1"})
    h2 = get(s.LOGS, tok, params={"hours": "2"})
    assert (cache_of(h1), cache_of(h2)) == ("MISS", "MISS")
    assert len(s.ok(h1)["events"]) == 1 and len(s.ok(h2)["events"]) == 2
    l1 = get(s.LOGS, tok, params={"hours": "2", "limit": "1"})
    assert cache_of(l1) == "MISS" and len(s.ok(l1)["events"]) == 1
    again = get(s.LOGS, tok, params={"hours": "1"})
    assert cache_of(again) == "HIT" and again.content == h1.content

    xau = get(s.OPEN, tok, params={"symbol": "XAUUSD"})
    eur = get(s.OPEN, tok, params={"symbol": "EURUSD"})
    everything = get(s.OPEN, tok)
    assert [cache_of(r) for r in (xau, eur, everything)] == ["MISS", "MISS", "MISS"]
    assert [p["ticket"] for p in s.ok(xau)["positions"]] == [2]
    assert [p["ticket"] for p in s.ok(eur)["positions"]] == [1]
    assert s.ok(everything)["total_positions"] == 2
    hit = get(s.OPEN, tok, params={"symbol": "EURUSD"})
    assert cache_of(hit) == "HIT" and hit.content == eur.content


def test_views_are_separate_entries(get, token, make_user, rows):
    """Each view is its own entry: a cached status does not answer logs, etc."""
    uid = make_user()
    seed(rows, uid)
    tok = token(uid)
    assert cache_of(get(s.STATUS, tok)) == "MISS"
    for path in (s.LOGS, s.OPEN, s.GUARDS, s.position_path(8001)):
        resp = get(path, tok)
        s.ok(resp)
        assert cache_of(resp) == "MISS", path


def test_unknown_parameters_are_not_part_of_the_key(get, token, make_user, rows):
    """Unknown parameters are ignored and not part of the cache key; nor is parameter order."""
    uid = make_user()
    rows.sync(uid, 1, age=30)
    tok = token(uid)
    first = get(s.LOGS, tok, params={"hours": "3", "limit": "7"})
    assert cache_of(first) == "MISS"
    for params in ({"hours": "3", "limit": "7", "utm_source": "x"},
                   {"limit": "7", "hours": "3"},
                   {"_": str(time.time()), "hours": "3", "limit": "7"}):
        resp = get(s.LOGS, tok, params=params)
        assert cache_of(resp) == "HIT", params
        assert resp.content == first.content
    assert cache_of(get(s.GUARDS, tok)) == "MISS"
    assert cache_of(get(s.GUARDS, tok, params={"nocache": "1"})) == "HIT"


def test_cache_is_per_user_not_per_token(get, token, make_user, rows):
    """Cached per user: another valid token of the same user reads the same entry."""
    uid = make_user()
    rows.sync(uid, 1, age=30)
    first = get(s.STATUS, token(uid, iat=int(time.time()) - 100))
    second = get(s.STATUS, token(uid, exp=int(time.time()) + 7200))
    assert (cache_of(first), cache_of(second)) == ("MISS", "HIT")


@pytest.mark.smoke
@pytest.mark.parametrize("view", ["status", "logs", "open", "guards"])
def test_users_never_see_each_others_cached_views(get, token, make_user, rows, view):
    """No response may ever reach a user other than the one it was computed for: user B's
    first request is a MISS computed for B even while A's entry is cached."""
    path, params = VIEWS[view]
    a, b = make_user(), make_user()
    seed(rows, a, price=1960.0)
    rows.sync(b, 8001, age=25, current_price=1940.0, symbol="XAGUSD")
    rows.snapshot(b, 5000.0, 10000.0)
    ta, tb = token(a), token(b)
    a1 = get(path, ta, params=params)
    assert cache_of(a1) == "MISS"
    assert cache_of(get(path, ta, params=params)) == "HIT"
    b1 = get(path, tb, params=params)
    assert cache_of(b1) == "MISS", "B must not be answered from A's entry"
    body_a, body_b = s.ok(a1), s.ok(b1)
    assert body_a["user_id"] == a and body_b["user_id"] == b
    assert b1.content != a1.content
    assert a not in b1.text and b not in a1.text
    b2 = get(path, tb, params=params)
    assert cache_of(b2) == "HIT" and b2.content == b1.content
    a2 = get(path, ta, params=params)
    assert cache_of(a2) == "HIT" and a2.content == a1.content


def test_cached_ticket_of_a_stays_404_for_b(get, token, make_user, rows):
    """/positions/{ticket} of A requested by B is 404 even after A's is cached."""
    a, b = make_user(), make_user()
    rows.sync(a, 424242, age=30)
    ta, tb = token(a), token(b)
    assert cache_of(get(s.position_path(424242), ta)) == "MISS"
    assert cache_of(get(s.position_path(424242), ta)) == "HIT"
    for _ in range(3):
        s.assert_error(get(s.position_path(424242), tb), 404, "not_found")
    hit = get(s.position_path(424242), ta)
    assert cache_of(hit) == "HIT" and s.ok(hit)["ticket"] == 424242


def test_same_ticket_for_two_users_is_two_entries(get, token, make_user, rows):
    """Both users own a ticket 9001: each sees their own through the cache."""
    a, b = make_user(), make_user()
    rows.sync(a, 9001, age=30, entry_price=1000.0)
    rows.sync(b, 9001, age=30, entry_price=2000.0)
    ta, tb = token(a), token(b)
    ra = get(s.position_path(9001), ta)
    rb = get(s.position_path(9001), tb)
    assert (cache_of(ra), cache_of(rb)) == ("MISS", "MISS")
    assert s.ok(ra)["entry_price"] == 1000.0 and s.ok(rb)["entry_price"] == 2000.0
    assert s.ok(get(s.position_path(9001), tb))["entry_price"] == 2000.0
