"""GET /api/v1/guards/status — drawdown and market guards.

Drawdown from the user's latest equity snapshot: (peak - equity) / peak × 100 (0 when peak is
0 or there is no snapshot); `normal` below 10 %, `warning` from 10 %, `critical` from 20 %,
compared unrounded. should_close_all and time_to_liquidation_seconds 60 when critical.
market_guard_alerts: guard_trigger rows of the last 15 minutes, newest first.
system_status: the worst level among drawdown and alerts, `normal` shown as `healthy`.
"""
from datetime import datetime, timezone

import pytest

import support as s


def guards_of(get, token, uid):
    body = s.ok(get(s.GUARDS, token(uid)))
    assert set(body) == s.GUARDS_KEYS, f"keys: {sorted(body)}"
    assert body["user_id"] == uid
    assert set(body["drawdown_guard"]) == s.DRAWDOWN_KEYS, sorted(body["drawdown_guard"])
    for alert in body["market_guard_alerts"]:
        assert set(alert) == s.ALERT_KEYS, f"alert keys: {sorted(alert)}"
    return body


def test_no_snapshot_no_alerts(get, token, make_user):
    """Drawdown 0 without a snapshot; equity fields null; healthy; nothing to close."""
    uid = make_user()
    body = guards_of(get, token, uid)
    assert body["drawdown_guard"] == {
        "current_equity": None, "peak_equity": None, "current_drawdown_pct": 0,
        "alert_type": "normal", "should_close_all": False, "time_to_liquidation_seconds": None}
    assert body["market_guard_alerts"] == []
    assert body["system_status"] == "healthy"
    assert body["any_positions_should_close"] is False


def test_last_evaluated_at_is_a_recent_timestamp(get, token, make_user, stack):
    """`last_evaluated_at`: when the view was computed (RFC 3339 UTC with Z)."""
    uid = make_user()
    body = guards_of(get, token, uid)
    evaluated = s.parse_rfc3339(body["last_evaluated_at"])
    age = (datetime.now(timezone.utc) - evaluated).total_seconds()
    assert -5 <= age <= stack.ttl + 60, body["last_evaluated_at"]


def test_contract_example_warning_at_exactly_10_percent(get, token, make_user, rows):
    """{"current_equity":18000.0,"peak_equity":20000.0,"current_drawdown_pct":10.0,
    "alert_type":"warning","should_close_all":false,"time_to_liquidation_seconds":null}"""
    uid = make_user()
    rows.snapshot(uid, 18000.0, 20000.0)
    body = guards_of(get, token, uid)
    assert body["drawdown_guard"] == {
        "current_equity": 18000.0, "peak_equity": 20000.0, "current_drawdown_pct": 10.0,
        "alert_type": "warning", "should_close_all": False, "time_to_liquidation_seconds": None}
    assert body["system_status"] == "warning"
    assert body["any_positions_should_close"] is False


@pytest.mark.parametrize("equity,peak,pct,level", [
    (10000.0, 10000.0, 0.0, "normal"),
    (9500.0, 10000.0, 5.0, "normal"),
    (9000.1, 10000.0, 10.0, "normal"),     # 9.999 % shows as 10.0 but is below the threshold
    (900.0, 1000.0, 10.0, "warning"),
    (8500.0, 10000.0, 15.0, "warning"),
    (8000.1, 10000.0, 20.0, "warning"),    # 19.999 %
    (800.0, 1000.0, 20.0, "critical"),
    (2500.0, 10000.0, 75.0, "critical"),
    (8888.88, 10000.0, 11.11, "warning"),  # 11.1112 → 11.11
    (8765.4, 10000.0, 12.35, "warning"),   # 12.346 → 12.35
], ids=lambda v: str(v))
def test_drawdown_levels_on_unrounded_values(get, token, make_user, rows, equity, peak, pct, level):
    """normal below 10 %, warning from 10 %, critical from 20 %, on the unrounded drawdown;
    the percentage is shown rounded to 2 decimals."""
    uid = make_user()
    rows.snapshot(uid, equity, peak)
    dd = guards_of(get, token, uid)["drawdown_guard"]
    assert dd["current_drawdown_pct"] == pct
    assert dd["alert_type"] == level
    assert (dd["current_equity"], dd["peak_equity"]) == (equity, peak)


@pytest.mark.smoke
def test_critical_drawdown_says_close_all(get, token, make_user, rows):
    """should_close_all and time_to_liquidation_seconds 60 when drawdown is critical;
    any_positions_should_close true; system_status critical."""
    uid = make_user()
    rows.snapshot(uid, 16000.0, 20000.0)
    body = guards_of(get, token, uid)
    dd = body["drawdown_guard"]
    assert dd["alert_type"] == "critical"
    assert dd["should_close_all"] is True
    assert dd["time_to_liquidation_seconds"] == 60 and s.is_int(dd["time_to_liquidation_seconds"])
    assert body["any_positions_should_close"] is True
    assert body["system_status"] == "critical"
    assert body["market_guard_alerts"] == []


def test_peak_zero_is_zero_drawdown(get, token, make_user, rows):
    """0 when peak is 0; the stored equity values are still shown."""
    uid = make_user()
    rows.snapshot(uid, 0.0, 0.0)
    body = guards_of(get, token, uid)
    assert body["drawdown_guard"] == {
        "current_equity": 0.0, "peak_equity": 0.0, "current_drawdown_pct": 0,
        "alert_type": "normal", "should_close_all": False, "time_to_liquidation_seconds": None}
    assert body["system_status"] == "healthy"


def test_latest_snapshot_is_used(get, token, make_user, rows):
    """Drawdown from the user's *latest* equity snapshot (by recorded_at)."""
    uid = make_user()
    rows.snapshot(uid, 5000.0, 20000.0, age=7200)     # critical, but old
    rows.snapshot(uid, 19500.55, 20000.0, age=60)     # latest: 2.49725 % → normal
    rows.snapshot(uid, 15000.0, 20000.0, age=3600)    # inserted later, older
    dd = guards_of(get, token, uid)["drawdown_guard"]
    assert dd["current_equity"] == 19500.55
    assert dd["current_drawdown_pct"] == 2.5
    assert dd["alert_type"] == "normal"
    assert dd["should_close_all"] is False


def test_alerts_of_the_last_15_minutes_newest_first(get, token, make_user, rows):
    """market_guard_alerts: the user's guard_trigger rows of the last 15 minutes, newest
    first; should_close_positions is guard_level == 'critical'; detected_at from created_at;
    price_gap_pct passed through as stored."""
    uid = make_user()
    rows.guard(uid, age=16 * 60, level="critical")                       # too old
    a3 = rows.guard(uid, age=14 * 60, symbol="XAGUSD", condition="low_liquidity",
                    level="normal", price_gap_pct=None)
    a2 = rows.guard(uid, age=5 * 60, symbol="EURUSD", condition="bid_ask_spread",
                    level="warning", price_gap_pct=0.123456)
    a1 = rows.guard(uid, age=30, symbol="XAUUSD", condition="price_gap", level="critical",
                    price_gap_pct=2.5)
    rows.sync(uid, 1, age=20)                                            # not a guard row
    body = guards_of(get, token, uid)
    assert body["market_guard_alerts"] == [
        {"symbol": "XAUUSD", "condition_type": "price_gap", "alert_type": "critical",
         "price_gap_pct": 2.5, "should_close_positions": True, "detected_at": a1.ts},
        {"symbol": "EURUSD", "condition_type": "bid_ask_spread", "alert_type": "warning",
         "price_gap_pct": 0.123456, "should_close_positions": False, "detected_at": a2.ts},
        {"symbol": "XAGUSD", "condition_type": "low_liquidity", "alert_type": "normal",
         "price_gap_pct": None, "should_close_positions": False, "detected_at": a3.ts},
    ]
    assert body["system_status"] == "critical"
    assert body["any_positions_should_close"] is True


def test_old_critical_alert_has_no_effect(get, token, make_user, rows):
    """Alerts older than 15 minutes neither show nor raise the status."""
    uid = make_user()
    rows.guard(uid, age=20 * 60, level="critical")
    body = guards_of(get, token, uid)
    assert body["market_guard_alerts"] == []
    assert body["system_status"] == "healthy"
    assert body["any_positions_should_close"] is False


@pytest.mark.parametrize("snapshot,alert_levels,status,close", [
    (None, ["normal"], "healthy", False),
    (None, ["normal", "warning"], "warning", False),
    ((9500.0, 10000.0), ["warning"], "warning", False),
    ((8500.0, 10000.0), ["normal"], "warning", False),
    ((8500.0, 10000.0), ["critical", "normal"], "critical", True),
    ((7000.0, 10000.0), ["warning"], "critical", True),
    ((9900.0, 10000.0), ["warning", "critical", "warning"], "critical", True),
    ((9900.0, 10000.0), [], "healthy", False),
], ids=str)
def test_system_status_is_the_worst_level(get, token, make_user, rows, snapshot, alert_levels,
                                          status, close):
    """system_status: the worst level among drawdown and alerts, normal shown as healthy;
    any_positions_should_close when an alert is critical or the drawdown is critical."""
    uid = make_user()
    if snapshot:
        rows.snapshot(uid, *snapshot)
    for i, level in enumerate(alert_levels):
        rows.guard(uid, age=60 + i * 10, level=level)
    body = guards_of(get, token, uid)
    assert body["system_status"] == status
    assert body["any_positions_should_close"] is close
    assert [a["should_close_positions"] for a in body["market_guard_alerts"]] == \
        [lvl == "critical" for lvl in alert_levels]


def test_stored_equity_passes_through(get, token, make_user, rows):
    """Stored values (equity) are passed through as stored."""
    uid = make_user()
    rows.snapshot(uid, 18000.555, 20000.125)
    dd = guards_of(get, token, uid)["drawdown_guard"]
    assert (dd["current_equity"], dd["peak_equity"]) == (18000.555, 20000.125)
    assert dd["current_drawdown_pct"] == 10.0   # 9.9978 % → shown 10.0, but below 10: normal
    assert dd["alert_type"] == "normal"

