"""GET /api/v1/reconciliation/status — the sync picture."""
import pytest
import support as s


def status_of(get, token, uid):
    body = s.ok(get(s.STATUS, token(uid)))
    assert set(body) == s.STATUS_KEYS, f"status keys: {sorted(body)}"
    assert body["user_id"] == uid
    for event in body["recent_events"]:
        assert set(event) == s.EVENT_KEYS, f"event keys: {sorted(event)}"
    return body


def event_of(row) -> dict:
    """The `event` object API.md defines, for an inserted row."""
    return {
        "id": row["id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "ticket": row.get("mt5_position_id"),
        "symbol": row["symbol"],
        "matched": row.get("matched"),
        "divergence_reason": row.get("divergence_reason"),
        "error_message": row.get("error_message"),
        "created_at": row["ts"],
    }


def test_user_without_rows_is_idle_with_nulls(get, token, make_user):
    """`idle` when there is no sync row; `last_sync_at`/`last_sync_duration_ms` null without a sync."""
    uid = make_user()
    body = status_of(get, token, uid)
    assert body == {
        "user_id": uid, "status": "idle", "last_sync_at": None, "total_syncs": 0,
        "last_sync_duration_ms": None, "open_positions_count": 0, "matched_positions": 0,
        "divergences_detected": 0, "recent_events": [], "error_message": None,
    }


@pytest.mark.smoke
def test_healthy_with_a_recent_successful_sync(get, token, make_user, rows):
    """Recent successful sync, nothing diverging: `healthy`; last_sync_* from the latest sync row."""
    uid = make_user()
    rows.sync(uid, 101, age=200, duration_ms=300)
    last = rows.sync(uid, 102, age=20, duration_ms=245)
    body = status_of(get, token, uid)
    assert body["status"] == "healthy"
    assert body["last_sync_at"] == last.ts
    assert body["last_sync_duration_ms"] == 245 and s.is_int(body["last_sync_duration_ms"])
    assert body["total_syncs"] == 2 and s.is_int(body["total_syncs"])
    assert body["open_positions_count"] == 2
    assert body["matched_positions"] == 2
    assert body["divergences_detected"] == 0
    assert body["error_message"] is None


def test_idle_when_last_sync_older_than_300s(get, token, make_user, rows):
    """`idle` when the last sync is older than 300 s — ahead of `warning` (failed, diverging)."""
    uid = make_user()
    rows.sync(uid, 1, age=360, matched=2, divergence_reason="volume mismatch", status="partial")
    body = status_of(get, token, uid)
    assert body["status"] == "idle"
    assert body["divergences_detected"] == 1  # still counted: the position is open
    assert body["total_syncs"] == 1


def test_not_idle_when_last_sync_within_300s(get, token, make_user, rows):
    """A sync 240 s old is not idle."""
    uid = make_user()
    rows.sync(uid, 1, age=240)
    assert status_of(get, token, uid)["status"] == "healthy"


def test_idle_looks_only_at_sync_rows(get, token, make_user, rows):
    """Fresh close and guard rows do not make an old sync recent."""
    uid = make_user()
    rows.sync(uid, 1, age=900)
    rows.close(uid, 1, age=10)
    rows.guard(uid, age=5)
    body = status_of(get, token, uid)
    assert body["status"] == "idle"
    assert body["open_positions_count"] == 0


def test_warning_when_last_sync_failed_with_its_error_message(get, token, make_user, rows):
    """`warning` when the last sync is `failed`; `error_message` is that sync's error_message."""
    uid = make_user()
    rows.sync(uid, 1, age=30, status="success")
    rows.sync(uid, 2, age=10, status="failed", error_message="MT5 terminal not responding")
    body = status_of(get, token, uid)
    assert body["status"] == "warning"
    assert body["error_message"] == "MT5 terminal not responding"


def test_warning_when_last_sync_partial_without_error_message(get, token, make_user, rows):
    """`warning` when the last sync is `partial`; error_message only when it *failed*."""
    uid = make_user()
    rows.sync(uid, 1, age=10, status="partial", error_message="2 of 3 positions read")
    body = status_of(get, token, uid)
    assert body["status"] == "warning"
    assert body["error_message"] is None


def test_warning_when_an_open_position_diverges(get, token, make_user, rows):
    """`warning` when any open position diverges, even after a successful last sync."""
    uid = make_user()
    rows.sync(uid, 1, age=40, matched=2, divergence_reason="missing on broker")
    rows.sync(uid, 2, age=10, matched=1)
    body = status_of(get, token, uid)
    assert body["status"] == "warning"
    assert body["divergences_detected"] == 1
    assert body["matched_positions"] == 1
    assert body["open_positions_count"] == 2


def test_divergence_of_a_closed_position_does_not_count(get, token, make_user, rows):
    """matched/divergences count only OPEN positions whose latest row has matched 1 / 2."""
    uid = make_user()
    rows.sync(uid, 1, age=60, matched=2, divergence_reason="x")
    rows.close(uid, 1, age=50, matched=2)
    rows.sync(uid, 2, age=10, matched=1)
    body = status_of(get, token, uid)
    assert body["status"] == "healthy"
    assert body["divergences_detected"] == 0
    assert body["open_positions_count"] == 1
    assert body["matched_positions"] == 1


def test_counts_use_the_latest_row_of_each_open_position(get, token, make_user, rows):
    """A position that diverged and was later matched counts as matched, not diverging;
    matched 0 or null counts as neither; a sync with close_reason set is not open."""
    uid = make_user()
    rows.sync(uid, 1, age=100, matched=2, divergence_reason="price")
    rows.sync(uid, 1, age=20, matched=1)          # now matched
    rows.sync(uid, 2, age=100, matched=1)
    rows.sync(uid, 2, age=19, matched=2, divergence_reason="sl moved")  # now diverging
    rows.sync(uid, 3, age=18, matched=0)          # not matched
    rows.sync(uid, 4, age=17, matched=None)       # unknown
    rows.sync(uid, 5, age=16, matched=2, close_reason="stop_loss")  # closed by close_reason
    body = status_of(get, token, uid)
    assert body["open_positions_count"] == 4
    assert body["matched_positions"] == 1
    assert body["divergences_detected"] == 1
    assert body["status"] == "warning"


def test_matched_zero_is_healthy(get, token, make_user, rows):
    """Only matched == 2 is a divergence."""
    uid = make_user()
    rows.sync(uid, 1, age=10, matched=0)
    body = status_of(get, token, uid)
    assert body["status"] == "healthy"
    assert (body["matched_positions"], body["divergences_detected"]) == (0, 0)


def test_error_message_when_idle_and_last_sync_failed(get, token, make_user, rows):
    """`error_message` is the last sync's error_message when that sync failed (idle or not)."""
    uid = make_user()
    rows.sync(uid, 1, age=3600, status="failed", error_message="login rejected")
    body = status_of(get, token, uid)
    assert body["status"] == "idle"
    assert body["error_message"] == "login rejected"


def test_error_message_only_from_the_last_sync(get, token, make_user, rows):
    """An older failed sync's message is not shown once a later sync succeeded; nor is a
    failed close or guard row's message."""
    uid = make_user()
    rows.sync(uid, 1, age=100, status="failed", error_message="old failure")
    rows.sync(uid, 1, age=50, status="success")
    rows.close(uid, 2, age=20, status="failed", error_message="close failed")
    rows.guard(uid, age=10, status="failed", error_message="guard failed")
    body = status_of(get, token, uid)
    assert body["error_message"] is None
    assert body["status"] == "healthy"


def test_total_syncs_counts_every_sync_row_and_nothing_else(get, token, make_user, rows):
    """`total_syncs`: the user's `sync` rows (all time, any status), not close or guard rows."""
    uid = make_user()
    rows.sync(uid, 1, age=3 * 86400)
    rows.sync(uid, 1, age=600, status="failed")
    rows.sync(uid, 2, age=30, status="partial")
    rows.close(uid, 2, age=20)
    rows.guard(uid, age=10)
    assert status_of(get, token, uid)["total_syncs"] == 3


def test_last_sync_fields_come_from_the_latest_sync_not_newer_rows(get, token, make_user, rows):
    """`last_sync_*`: the latest `sync` row, even when close/guard rows are newer."""
    uid = make_user()
    rows.sync(uid, 1, age=100, duration_ms=999)
    sync = rows.sync(uid, 2, age=40, duration_ms=321)
    rows.close(uid, 1, age=20, duration_ms=5)
    rows.guard(uid, age=10)
    body = status_of(get, token, uid)
    assert body["last_sync_at"] == sync.ts
    assert body["last_sync_duration_ms"] == 321


def test_last_sync_duration_null_when_not_recorded(get, token, make_user, rows):
    uid = make_user()
    rows.sync(uid, 1, age=10, duration_ms=None)
    body = status_of(get, token, uid)
    assert body["last_sync_duration_ms"] is None
    assert body["last_sync_at"] is not None


def test_recent_events_are_the_five_newest_of_every_type(get, token, make_user, rows):
    """`recent_events`: at most 5, newest first, rows of every event_type; an event's `matched`
    is the raw column value (0, 1, 2, or null on guard rows); `ticket` null on guard rows."""
    uid = make_user()
    rows.sync(uid, 10, age=70)
    rows.sync(uid, 11, age=60)
    e5 = rows.sync(uid, 11, age=50, matched=0)
    e4 = rows.guard(uid, age=40, symbol="EURUSD", condition="bid_ask_spread", level="critical")
    e3 = rows.sync(uid, 12, age=30, matched=2, divergence_reason="volume mismatch",
                   status="partial", error_message="partial read")
    e2 = rows.close(uid, 10, age=20, matched=1)
    e1 = rows.sync(uid, 13, age=10, status="failed", error_message="timeout", matched=None)
    body = status_of(get, token, uid)
    assert body["recent_events"] == [event_of(e) for e in (e1, e2, e3, e4, e5)]
    guard_event = body["recent_events"][3]
    assert guard_event["ticket"] is None and guard_event["matched"] is None
    assert s.is_int(body["recent_events"][1]["ticket"])


def test_recent_events_are_not_limited_to_a_time_window(get, token, make_user, rows):
    """`recent_events` are the newest rows, however old (no window is defined for them)."""
    uid = make_user()
    old = rows.sync(uid, 1, age=3 * 86400)
    body = status_of(get, token, uid)
    assert [e["id"] for e in body["recent_events"]] == [old.id]


def test_ids_and_user_id_are_lowercase_uuids(get, token, make_user, rows):
    """UUIDs lowercase."""
    uid = make_user()
    rows.sync(uid, 1, age=10)
    rows.guard(uid, age=5)
    body = status_of(get, token, uid)
    assert s.UUID_RE.match(body["user_id"])
    for event in body["recent_events"]:
        assert s.UUID_RE.match(event["id"]), event["id"]


def test_timestamps_keep_their_fraction(get, token, make_user, rows):
    """RFC 3339 UTC with `Z`; a stored fraction is printed (trailing zeros trimmed)."""
    uid = make_user()
    a = rows.sync(uid, 1, age=12.5)          # .5
    b = rows.sync(uid, 2, age=11.877)        # .123
    c = rows.sync(uid, 3, age=10.876544)     # .123456
    body = status_of(get, token, uid)
    assert body["last_sync_at"] == c.ts and c.ts.endswith(".123456Z")
    assert [e["created_at"] for e in body["recent_events"]] == [c.ts, b.ts, a.ts]
    assert b.ts.endswith(".123Z") and a.ts.endswith(".5Z")
