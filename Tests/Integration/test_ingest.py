"""Writes (issue 9 part 1): POST /reconciliation/events and POST /equity through nginx.

Only a token whose `scope` holds reconciliation:write may write (for any existing user);
a batch is validated whole (400 naming the first bad item's index and field) and written in
one transaction or not at all; retries write nothing twice (event ids, Idempotency-Key);
nginx refuses bodies over 1 MiB with 413 JSON before a worker reads them; a write is seen
at once through the views.
"""
import json
import socket
import time
import uuid

import pytest

import support as s

EVENTS = "/api/v1/reconciliation/events"
EQUITY = "/api/v1/equity"
WRITE = "reconciliation:write"


@pytest.fixture
def writer_token(token):
    """The bot's token: its own sub, the write scope."""
    return token(s.new_uuid(), scope=f"openid {WRITE}")


@pytest.fixture
def post(request_):
    def _post(path, tok, body, headers=None, **kw):
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return request_("POST", path, tok, data=data, headers=hdrs, **kw)
    return _post


def sync_event(uid, ticket, **extra):
    event = {"user_id": uid, "event_type": "sync", "status": "success", "mt5_position_id": ticket,
             "symbol": "XAUUSD", "direction": "buy", "volume": 0.1, "entry_price": 1950.5,
             "current_price": 1955.75, "matched": 1, "duration_ms": 120}
    event.update(extra)
    return event


def guard_event(uid, **extra):
    event = {"user_id": uid, "event_type": "guard_trigger", "status": "success", "symbol": "XAUUSD",
             "guard_condition": "price_gap", "guard_level": "critical", "price_gap_pct": 2.5}
    event.update(extra)
    return event


def count_rows(db, uid):
    return db.execute("SELECT count(*) FROM reconciliation_logs WHERE user_id = %s", (uid,)).fetchone()[0]


@pytest.mark.smoke
def test_events_are_written_in_order_and_seen_at_once(post, get, token, writer_token, make_user, db):
    uid = make_user()
    tok = token(uid)
    before = s.ok(get(s.STATUS, tok))
    assert before["total_syncs"] == 0 and s.ok(get(s.STATUS, tok))  # cached now
    client_id = s.new_uuid()
    body = {"events": [sync_event(uid, 9101), guard_event(uid), sync_event(uid, 9102, id=client_id.upper(),
                                                                          created_at="2030-01-01T00:00:00.5+01:00")]}
    resp = post(EVENTS, writer_token, body)
    assert resp.status_code == 201, resp.text
    ids = resp.json()["ids"]
    assert len(ids) == 3 and all(s.UUID_RE.match(i) for i in ids) and ids[2] == client_id
    stored = db.execute("SELECT id::text, event_type, mt5_position_id, created_at FROM reconciliation_logs"
                        " WHERE user_id = %s ORDER BY mt5_position_id NULLS FIRST", (uid,)).fetchall()
    assert {r[0] for r in stored} == set(ids)
    assert s.rfc3339([r for r in stored if r[0] == client_id][0][3]) == "2029-12-31T23:00:00.5Z"
    # The status view shows the writes without waiting for any TTL.
    s.wait_until(lambda: s.ok(get(s.STATUS, tok))["total_syncs"] == 2, timeout=0.5, interval=0.01,
                 what="the written syncs in the status view")
    assert {p["ticket"] for p in s.ok(get(s.OPEN, tok))["positions"]} == {9101, 9102}


def test_snapshots_are_written(post, get, token, writer_token, make_user):
    uid = make_user()
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    resp = post(EQUITY, writer_token, {"snapshots": [{"user_id": uid, "equity": 16000.0, "peak_equity": 20000.0,
                                                      "recorded_at": at}]})
    assert resp.status_code == 201 and resp.json() == {"inserted": 1}
    guards = s.ok(get(s.GUARDS, token(uid)))
    assert guards["drawdown_guard"]["current_drawdown_pct"] == 20.0
    assert guards["drawdown_guard"]["alert_type"] == "critical"


def test_a_reading_token_is_forbidden_and_writes_nothing(post, token, make_user, db):
    uid = make_user()
    for tok in (token(uid), token(uid, scope="reconciliation:read"), token(uid, scope="reconciliation:writer")):
        resp = post(EVENTS, tok, {"events": [sync_event(uid, 1)]})
        s.assert_error(resp, 403, "forbidden")
    assert count_rows(db, uid) == 0
    s.assert_error(post(EVENTS, None, {"events": [sync_event(uid, 1)]}), 401, "unauthorized")


@pytest.mark.parametrize("index,patch,field", [
    (0, {"volume": "0.1"}, "volume"),
    (1, {"event_type": "open"}, "event_type"),
    (1, {"status": "ok"}, "status"),
    (1, {"direction": "long"}, "direction"),
    (1, {"matched": 3}, "matched"),
    (1, {"mt5_position_id": None}, "mt5_position_id"),
    (1, {"guard_level": "warning"}, "guard_level"),
    (1, {"symbol": "X" * 21}, "symbol"),
    (1, {"symbol": ""}, "symbol"),
    (1, {"divergence_reason": "r" * 101}, "divergence_reason"),
    (1, {"duration_ms": 2 ** 31}, "duration_ms"),
    (1, {"mt5_position_id": 1.5}, "mt5_position_id"),
    (1, {"user_id": "not-a-uuid"}, "user_id"),
    (1, {"created_at": "2025-10-26 12:00:00"}, "created_at"),
    (1, {"error_message": "nul\u0000byte"}, "error_message"),
    (1, {"colour": "red"}, "colour"),
    (1, {"pnl_gbp": True}, "pnl_gbp"),
])
def test_a_bad_item_is_named_and_nothing_is_written(post, writer_token, make_user, db, index, patch, field):
    uid = make_user()
    events = [sync_event(uid, 1), sync_event(uid, 2), sync_event(uid, 3)]
    events[index].update(patch)
    resp = post(EVENTS, writer_token, {"events": events})
    body = s.assert_error(resp, 400, "bad_request")
    assert body["message"].startswith(f"events[{index}].{field}:"), body["message"]
    assert count_rows(db, uid) == 0


def test_guard_rows_refuse_a_ticket_and_need_their_fields(post, writer_token, make_user, db):
    uid = make_user()
    body = s.assert_error(post(EVENTS, writer_token, {"events": [guard_event(uid, mt5_position_id=5)]}), 400, "bad_request")
    assert body["message"].startswith("events[0].mt5_position_id:")
    event = guard_event(uid)
    del event["guard_condition"]
    body = s.assert_error(post(EVENTS, writer_token, {"events": [event]}), 400, "bad_request")
    assert body["message"].startswith("events[0].guard_condition:")
    assert count_rows(db, uid) == 0


def test_an_unknown_user_is_named_and_nothing_is_written(post, writer_token, make_user, db):
    uid = make_user()
    resp = post(EVENTS, writer_token, {"events": [sync_event(uid, 1), sync_event(s.new_uuid(), 2)]})
    assert s.assert_error(resp, 400, "bad_request")["message"].startswith("events[1].user_id:")
    resp = post(EQUITY, writer_token, {"snapshots": [{"user_id": s.new_uuid(), "equity": 1.0, "peak_equity": 1.0,
                                                      "recorded_at": "2025-10-26T12:00:00Z"}]})
    assert s.assert_error(resp, 400, "bad_request")["message"].startswith("snapshots[0].user_id:")
    assert count_rows(db, uid) == 0


@pytest.mark.parametrize("body,start", [
    (b"", "the body is not valid JSON"),
    (b"{", "the body is not valid JSON"),
    (b"[]", "body:"),
    (b'{"events":[]}', "events: must hold 1 to 1000"),
    (b'{"events":{}}', "events:"),
    (b'{}', "events:"),
    (b'{"events":[1]}', "events[0]:"),
    (b'{"events":[],"extra":1}', "extra:"),
])
def test_malformed_bodies_are_400(post, writer_token, body, start):
    message = s.assert_error(post(EVENTS, writer_token, body), 400, "bad_request")["message"]
    assert message.startswith(start), message


def test_more_than_1000_events_is_400(post, writer_token, make_user, db):
    uid = make_user()
    events = [guard_event(uid) for _ in range(1001)]
    body = s.assert_error(post(EVENTS, writer_token, {"events": events}), 400, "bad_request")
    assert "1 to 1000" in body["message"]
    assert count_rows(db, uid) == 0


def test_a_full_batch_of_1000_is_one_transaction(post, writer_token, make_user, db):
    uid = make_user()
    events = [sync_event(uid, 10_000 + i) for i in range(1000)]
    resp = post(EVENTS, writer_token, {"events": events})
    assert resp.status_code == 201 and len(resp.json()["ids"]) == 1000
    assert count_rows(db, uid) == 1000


def test_wrong_method_and_media_type(request_, post, writer_token, token, make_user):
    uid = make_user()
    resp = request_("GET", EVENTS, token(uid))
    s.assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"
    resp = request_("POST", s.STATUS, token(uid))
    s.assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "GET, HEAD"
    resp = post(EVENTS, writer_token, {"events": [sync_event(uid, 1)]}, headers={"Content-Type": "text/plain"})
    s.assert_error(resp, 415, "unsupported_media_type")


def test_nginx_refuses_a_body_over_1_mib_before_any_worker(post, writer_token):
    resp = post(EVENTS, writer_token, b'{"events":[' + b" " * (1024 * 1024) + b"]}")
    s.assert_error(resp, 413, "payload_too_large")


def test_a_slow_body_does_not_pin_a_worker(stack, get, token, make_user, rows):
    """A client that sends half a body and stalls is held by nginx, not by a worker: while 20
    such clients stall, reads are answered as usual."""
    uid = make_user()
    rows.sync(uid, 1, age=30)
    host, port = stack.base_url.split("//")[1].split(":")
    stalled = []
    try:
        for _ in range(20):
            conn = socket.create_connection((host, int(port)), timeout=5)
            conn.sendall((f"POST {EVENTS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Content-Length: 5000\r\n\r\n").encode() + b'{"events":[')
            stalled.append(conn)
        started = time.monotonic()
        for _ in range(20):
            s.ok(get(s.STATUS, token(uid)))
        assert time.monotonic() - started < 2
    finally:
        for conn in stalled:
            conn.close()


def test_a_retried_batch_with_client_ids_writes_nothing_twice(post, writer_token, make_user, db):
    uid = make_user()
    events = [sync_event(uid, 1, id=s.new_uuid()), guard_event(uid, id=s.new_uuid())]
    first = post(EVENTS, writer_token, {"events": events})
    again = post(EVENTS, writer_token, {"events": events})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert count_rows(db, uid) == 2


def test_an_id_of_another_users_row_is_409_and_nothing_is_written(post, writer_token, make_user, db):
    a, b = make_user(), make_user()
    taken = s.new_uuid()
    assert post(EVENTS, writer_token, {"events": [sync_event(a, 1, id=taken)]}).status_code == 201
    resp = post(EVENTS, writer_token, {"events": [sync_event(b, 2), sync_event(b, 3, id=taken)]})
    assert s.assert_error(resp, 409, "conflict")["message"].startswith("events[1].id:")
    assert count_rows(db, b) == 0


def test_repeated_ids_in_one_batch_are_400(post, writer_token, make_user):
    uid = make_user()
    same = s.new_uuid()
    resp = post(EVENTS, writer_token, {"events": [sync_event(uid, 1, id=same), sync_event(uid, 2, id=same)]})
    assert s.assert_error(resp, 400, "bad_request")["message"].startswith("events[1].id:")


def test_idempotency_key_replays_the_first_answer(post, writer_token, make_user, db):
    uid = make_user()
    key = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    body = {"events": [sync_event(uid, 1), sync_event(uid, 2)]}
    first = post(EVENTS, writer_token, body, headers=key)
    again = post(EVENTS, writer_token, body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert count_rows(db, uid) == 2
    snapshot = {"snapshots": [{"user_id": uid, "equity": 1.0, "peak_equity": 2.0, "recorded_at": "2025-10-26T12:00:00Z"}]}
    assert post(EQUITY, writer_token, snapshot, headers={"Idempotency-Key": "s-" + key["Idempotency-Key"]}).status_code == 201
    assert post(EQUITY, writer_token, snapshot, headers={"Idempotency-Key": "s-" + key["Idempotency-Key"]}).status_code == 201
    assert db.execute("SELECT count(*) FROM equity_snapshots WHERE user_id = %s", (uid,)).fetchone()[0] == 1
    other = {"events": [sync_event(uid, 3)]}
    s.assert_error(post(EVENTS, writer_token, other, headers=key), 409, "conflict")
    assert count_rows(db, uid) == 2
    s.assert_error(post(EVENTS, writer_token, other, headers={"Idempotency-Key": "with space"}), 400, "bad_request")


def test_concurrent_retries_with_one_key_write_once(stack, writer_token, make_user, db):
    """Eight copies of one batch with one key at once: one transaction writes, the others
    replay its answer."""
    from concurrent.futures import ThreadPoolExecutor
    import requests
    uid = make_user()
    headers = {"Authorization": f"Bearer {writer_token}", "Content-Type": "application/json",
               "Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = json.dumps({"events": [sync_event(uid, i) for i in range(1, 51)]})

    def send(_):
        with requests.Session() as session:
            return session.post(stack.base_url + EVENTS, data=body, headers=headers, timeout=10)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    assert [r.status_code for r in results] == [201] * 8, [r.text for r in results]
    assert len({r.text for r in results}) == 1
    assert count_rows(db, uid) == 50
