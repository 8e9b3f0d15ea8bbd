"""GET /api/v1/reconciliation/logs?hours=H&limit=L[&cursor=C]

The user's rows of the last H hours (1–168, default 1), newest first, at most L (1–500,
default 100): {"user_id","hours","events":[event…],"next_cursor"}; `next_cursor` (null on the
last page) resumes right after the page's last row. Integer parameters are plain decimal
digits; anything else, or out of range, is 400 `bad_request` naming the parameter.
"""
import pytest

import support as s


def logs_of(get, token, uid, **params):
    body = s.ok(get(s.LOGS, token(uid), params=params or None))
    assert set(body) == s.LOGS_KEYS, f"logs keys: {sorted(body)}"
    assert body["user_id"] == uid
    assert s.is_int(body["hours"])
    for event in body["events"]:
        assert set(event) == s.EVENT_KEYS, f"event keys: {sorted(event)}"
    return body


def test_default_window_is_one_hour(get, token, make_user, rows):
    """hours defaults to 1: a row 50 min old is in, one 70 min old is out."""
    uid = make_user()
    inside = rows.sync(uid, 1, age=50 * 60)
    rows.sync(uid, 1, age=70 * 60)
    body = logs_of(get, token, uid)
    assert body["hours"] == 1
    assert [e["id"] for e in body["events"]] == [inside.id]


def test_hours_widens_the_window(get, token, make_user, rows):
    uid = make_user()
    a = rows.sync(uid, 1, age=50 * 60)
    b = rows.sync(uid, 1, age=110 * 60)
    rows.sync(uid, 1, age=130 * 60)
    body = logs_of(get, token, uid, hours="2")
    assert body["hours"] == 2
    assert [e["id"] for e in body["events"]] == [a.id, b.id]


def test_hours_168_is_the_maximum_window(get, token, make_user, rows):
    uid = make_user()
    inside = rows.guard(uid, age=167 * 3600)
    rows.guard(uid, age=169 * 3600)
    body = logs_of(get, token, uid, hours="168")
    assert body["hours"] == 168
    assert [e["id"] for e in body["events"]] == [inside.id]


@pytest.mark.smoke
def test_events_newest_first_of_every_type_with_all_fields(get, token, make_user, rows):
    """Newest first; rows of every event_type; raw `matched`; `ticket` null on guard rows."""
    uid = make_user()
    g = rows.guard(uid, age=300, symbol="GBPUSD", condition="low_liquidity", level="normal",
                   price_gap_pct=None)
    c = rows.close(uid, 77, age=200, matched=0, symbol="EURUSD", direction="sell",
                   entry_price=1.1, closed_price=1.09)
    y = rows.sync(uid, 78, age=100, matched=2, divergence_reason="tp differs",
                  status="failed", error_message="broker said no")
    body = logs_of(get, token, uid)
    assert body["events"] == [
        {"id": y.id, "event_type": "sync", "status": "failed", "ticket": 78, "symbol": "XAUUSD",
         "matched": 2, "divergence_reason": "tp differs", "error_message": "broker said no",
         "created_at": y.ts},
        {"id": c.id, "event_type": "close", "status": "success", "ticket": 77, "symbol": "EURUSD",
         "matched": 0, "divergence_reason": None, "error_message": None, "created_at": c.ts},
        {"id": g.id, "event_type": "guard_trigger", "status": "success", "ticket": None,
         "symbol": "GBPUSD", "matched": None, "divergence_reason": None, "error_message": None,
         "created_at": g.ts},
    ]


def test_default_limit_is_100(get, token, make_user, rows):
    uid = make_user()
    rows.guards_bulk(uid, 105)
    body = logs_of(get, token, uid)
    assert len(body["events"]) == 100
    times = [e["created_at"] for e in body["events"]]
    assert times == sorted(times, reverse=True)
    assert times[0] == s.rfc3339(rows.at(1))      # the newest 100 of 105
    assert times[-1] == s.rfc3339(rows.at(100))


def test_limit_500_is_the_maximum(get, token, make_user, rows):
    uid = make_user()
    rows.guards_bulk(uid, 505)
    body = logs_of(get, token, uid, limit="500")
    assert len(body["events"]) == 500
    assert body["events"][-1]["created_at"] == s.rfc3339(rows.at(500))


def test_limit_keeps_the_newest(get, token, make_user, rows):
    uid = make_user()
    old = rows.sync(uid, 1, age=300)
    mid = rows.sync(uid, 1, age=200)
    new = rows.sync(uid, 1, age=100)
    assert [e["id"] for e in logs_of(get, token, uid, limit="2")["events"]] == [new.id, mid.id]
    assert [e["id"] for e in logs_of(get, token, uid, limit="1")["events"]] == [new.id]
    assert [e["id"] for e in logs_of(get, token, uid, limit="3")["events"]] == [new.id, mid.id, old.id]


def test_hours_and_limit_together(get, token, make_user, rows):
    uid = make_user()
    a = rows.sync(uid, 1, age=3 * 3600)
    rows.sync(uid, 1, age=5 * 3600)
    b = rows.sync(uid, 1, age=60)
    body = logs_of(get, token, uid, hours="4", limit="5")
    assert body["hours"] == 4
    assert [e["id"] for e in body["events"]] == [b.id, a.id]


def test_leading_zeros_are_plain_decimal_digits(get, token, make_user, rows):
    """Integer parameters are plain decimal digits: "002" is 2."""
    uid = make_user()
    r = rows.sync(uid, 1, age=90 * 60)
    body = logs_of(get, token, uid, hours="002", limit="010")
    assert body["hours"] == 2
    assert [e["id"] for e in body["events"]] == [r.id]


def test_unknown_parameters_are_ignored(get, token, make_user, rows):
    uid = make_user()
    r = rows.sync(uid, 1, age=60)
    body = logs_of(get, token, uid, foo="bar", hourz="xyz", Hours="abc")
    assert body["hours"] == 1 and [e["id"] for e in body["events"]] == [r.id]


BAD_INTEGERS = ["1.5", "-1", "abc", "0", "+5", " 5", "5 ", "", "1e2", "0x10", "1,5", "٣", "５",
                "99999999999999999999999999"]


@pytest.mark.parametrize("value", BAD_INTEGERS + ["169", "1000"], ids=repr)
def test_bad_hours_is_400_naming_hours(get, token, stack, value):
    """hours: plain decimal digits, 1–168; anything else is 400 bad_request naming `hours`."""
    body = s.assert_error(get(s.LOGS, token(s.new_uuid()), params={"hours": value}), 400,
                          "bad_request", secrets=stack.secrets)
    assert "hours" in body["message"], body


@pytest.mark.parametrize("value", BAD_INTEGERS + ["501", "100000"], ids=repr)
def test_bad_limit_is_400_naming_limit(get, token, stack, value):
    """limit: plain decimal digits, 1–500; anything else is 400 bad_request naming `limit`."""
    body = s.assert_error(get(s.LOGS, token(s.new_uuid()), params={"limit": value}), 400,
                          "bad_request", secrets=stack.secrets)
    assert "limit" in body["message"], body


def test_bad_parameter_with_a_good_one(get, token, stack):
    body = s.assert_error(get(s.LOGS, token(s.new_uuid()), params={"hours": "24", "limit": "0"}),
                          400, "bad_request")
    assert "limit" in body["message"]


@pytest.mark.parametrize("value", ["1", "168"])
def test_hours_range_edges_are_valid(get, token, value):
    body = s.ok(get(s.LOGS, token(s.new_uuid()), params={"hours": value}))
    assert body["hours"] == int(value)


@pytest.mark.parametrize("value", ["1", "500"])
def test_limit_range_edges_are_valid(get, token, value):
    assert s.ok(get(s.LOGS, token(s.new_uuid()), params={"limit": value}))["events"] == []


# --------------------------------------------------------------------------- paging (issue 9)

def test_pages_walk_the_window_once_in_order_with_ties(get, token, make_user, rows):
    """limit=3 over 8 rows in the window (three of them at the same instant, ordered by id
    descending) and one outside it: three pages, every row once, in the view's order, and
    `next_cursor` null on the last."""
    uid = make_user()
    made = [rows.sync(uid, 100 + i, age=60 * (i + 1)) for i in range(5)]
    made += [rows.guard(uid, age=30) for _ in range(3)]            # ties on created_at
    rows.sync(uid, 999, age=2 * 3600)                              # outside hours=1
    expected = [r.id for r in sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = logs_of(get, token, uid, **params)
        pages += 1
        seen += [e["id"] for e in body["events"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and len(body["events"]) == 3
    assert pages == 3 and seen == expected


def test_a_full_last_page_has_no_cursor(get, token, make_user, rows):
    uid = make_user()
    for i in range(3):
        rows.sync(uid, i, age=60 * (i + 1))
    body = logs_of(get, token, uid, limit="3")
    assert len(body["events"]) == 3 and body["next_cursor"] is None


def test_a_cursor_of_another_user_or_a_forged_one_is_400(get, token, make_user, rows):
    alice, bob = make_user(), make_user()
    for uid in (alice, bob):
        for i in range(3):
            rows.sync(uid, i, age=60 * (i + 1))
    cursor = logs_of(get, token, alice, limit="1")["next_cursor"]
    assert cursor
    resp = get(s.LOGS, token(bob), params={"limit": "1", "cursor": cursor})
    assert "cursor" in s.assert_error(resp, 400, "bad_request")["message"]
    payload, tag = cursor.split(".")
    forged = ("A" if payload[0] != "A" else "B") + payload[1:] + "." + tag
    for bad in (forged, "x", cursor + "x", "a.b", ""):
        resp = get(s.LOGS, token(alice), params={"limit": "1", "cursor": bad})
        s.assert_error(resp, 400, "bad_request")


def test_pages_are_cached_and_a_write_refreshes_them(get, token, make_user, rows):
    uid = make_user()
    for i in range(4):
        rows.sync(uid, i, age=60 * (i + 1))
    first = logs_of(get, token, uid, limit="2")
    params = {"limit": "2", "cursor": first["next_cursor"]}
    page = get(s.LOGS, token(uid), params=params)
    again = get(s.LOGS, token(uid), params=params)
    assert (page.headers["X-Cache"], again.headers["X-Cache"]) == ("MISS", "HIT")
    rows.sync(uid, 50, age=200)  # lands among the second page's rows (180 s and 240 s old)
    after = s.ok(get(s.LOGS, token(uid), params=params))
    assert [e["ticket"] for e in after["events"]] == [2, 50]
