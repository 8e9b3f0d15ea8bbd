"""GET /api/v1/positions/open?symbol=S

A position is the sync/close rows of one user with one mt5_position_id; its state is its
latest row (created_at, then id, descending); it is open when that row is a `sync` row with
close_reason IS NULL. Unrealized P&L = (current - entry) × volume × contract_size, negated
for sell; contract_size from instruments, 1 without a row; null when current_price is null
(and then left out of totals). Money rounds half away from zero to 2 decimals, percentages
to 2 decimals; totals are computed from unrounded values and rounded once.
"""
import pytest

import support as s


def open_of(get, token, uid, **params):
    body = s.ok(get(s.OPEN, token(uid), params=params or None))
    assert set(body) == s.POSITIONS_KEYS, f"keys: {sorted(body)}"
    assert body["user_id"] == uid
    assert s.is_int(body["total_positions"]) and body["total_positions"] == len(body["positions"])
    for p in body["positions"]:
        assert set(p) == s.POSITION_KEYS, f"position keys: {sorted(p)}"
    return body


def by_ticket(body):
    return {p["ticket"]: p for p in body["positions"]}


# --------------------------------------------------------------------------- shape


def test_empty(get, token, make_user):
    """No positions: totals 0, pct null without a snapshot, last_updated_at null."""
    uid = make_user()
    assert open_of(get, token, uid) == {
        "user_id": uid, "total_positions": 0, "total_unrealized_pnl": 0,
        "total_unrealized_pnl_pct": None, "positions": [], "last_updated_at": None}


@pytest.mark.smoke
def test_position_object_matches_the_contract_example(get, token, make_user, rows):
    """{"ticket":12345,"symbol":"XAUUSD","direction":"buy","volume":0.1,"entry_price":1950.5,
    "current_price":1955.75,...,"unrealized_pnl":52.5,"matched_with_bot":true,...}"""
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    first = rows.sync(uid, 12345, age=120, current_price=1951.0)
    last = rows.sync(uid, 12345, age=30, volume=0.1, entry_price=1950.5, current_price=1955.75,
                     take_profit=None, stop_loss=None, matched=1)
    body = open_of(get, token, uid)
    assert body["positions"] == [{
        "ticket": 12345, "symbol": "XAUUSD", "direction": "buy", "volume": 0.1,
        "entry_price": 1950.5, "current_price": 1955.75, "take_profit": None, "stop_loss": None,
        "unrealized_pnl": 52.5, "matched_with_bot": True, "divergence_reason": None,
        "opened_at": first.ts, "updated_at": last.ts}]
    assert body["total_positions"] == 1
    assert body["total_unrealized_pnl"] == 52.5
    assert body["last_updated_at"] == last.ts
    assert s.is_int(body["positions"][0]["ticket"])


def test_stored_values_pass_through(get, token, make_user, rows):
    """Stored values (prices, volume, tp/sl) are passed through as stored, not rounded."""
    uid = make_user()
    rows.sync(uid, 1, symbol="EURUSD", volume=0.37, entry_price=1.084215, current_price=1.0850123,
              take_profit=1.0999999, stop_loss=1.07001, matched=2,
              divergence_reason="stop loss differs", age=30)
    p = open_of(get, token, uid)["positions"][0]
    assert (p["volume"], p["entry_price"], p["current_price"], p["take_profit"], p["stop_loss"]) == \
        (0.37, 1.084215, 1.0850123, 1.0999999, 1.07001)
    assert p["matched_with_bot"] is False
    assert p["divergence_reason"] == "stop loss differs"


def test_large_ticket_is_exact(get, token, make_user, rows):
    """`ticket` is mt5_position_id, a bigint: printed exactly, even above 2^53."""
    uid = make_user()
    big = 2**53 + 1
    rows.sync(uid, big, age=10)
    assert [p["ticket"] for p in open_of(get, token, uid)["positions"]] == [big]


# --------------------------------------------------------------------------- P&L


def test_contract_size_from_instruments(get, token, make_user, rows):
    """contract_size from `instruments`: 0.5 lot × 250 × (10.5 - 10) = 62.5."""
    uid = make_user()
    sym = s.unique_symbol("CS")
    rows.instrument(sym, 250)
    rows.sync(uid, 1, symbol=sym, volume=0.5, entry_price=10.0, current_price=10.5, age=10)
    body = open_of(get, token, uid)
    assert body["positions"][0]["unrealized_pnl"] == 62.5
    assert body["total_unrealized_pnl"] == 62.5


def test_contract_size_1_without_an_instruments_row(get, token, make_user, rows):
    """contract_size 1 where the symbol has no row: 2 × (105 - 100) = 10."""
    uid = make_user()
    sym = s.unique_symbol("NI")
    rows.sync(uid, 1, symbol=sym, volume=2.0, entry_price=100.0, current_price=105.0, age=10)
    assert open_of(get, token, uid)["positions"][0]["unrealized_pnl"] == 10.0


def test_seeded_instruments(get, token, make_user, rows):
    """XAUUSD 100, XAGUSD 5000, EURUSD 100000, BTCUSD 1 (seeded by migrations)."""
    uid = make_user()
    for sym, size in [("XAUUSD", 100), ("XAGUSD", 5000), ("EURUSD", 100000), ("BTCUSD", 1)]:
        rows.instrument(sym, size)
    rows.sync(uid, 1, symbol="XAUUSD", volume=0.2, entry_price=2000.0, current_price=2010.0, age=40)
    rows.sync(uid, 2, symbol="XAGUSD", volume=0.1, entry_price=24.0, current_price=24.5, age=30)
    rows.sync(uid, 3, symbol="EURUSD", volume=1.0, entry_price=1.25, current_price=1.2625, age=20)
    rows.sync(uid, 4, symbol="BTCUSD", volume=0.5, entry_price=60000.0, current_price=61000.0, age=10)
    pnl = {t: p["unrealized_pnl"] for t, p in by_ticket(open_of(get, token, uid)).items()}
    assert pnl == {1: 200.0, 2: 250.0, 3: 1250.0, 4: 500.0}


def test_sell_is_negated(get, token, make_user, rows):
    """Negated for `sell`: a sell gains when the price falls and loses when it rises."""
    uid = make_user()
    rows.instrument("EURUSD", 100000)
    rows.sync(uid, 1, symbol="EURUSD", direction="sell", volume=1.0, entry_price=1.1,
              current_price=1.095, age=20)
    rows.sync(uid, 2, symbol="EURUSD", direction="sell", volume=0.5, entry_price=1.25,
              current_price=1.2625, age=10)
    body = open_of(get, token, uid)
    pnl = {t: p["unrealized_pnl"] for t, p in by_ticket(body).items()}
    assert pnl == {1: 500.0, 2: -625.0}
    assert body["total_unrealized_pnl"] == -125.0


def test_null_current_price_is_null_and_left_out_of_totals(get, token, make_user, rows):
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    rows.sync(uid, 1, current_price=None, age=20)
    rows.sync(uid, 2, volume=0.1, entry_price=1950.5, current_price=1955.75, age=10)
    rows.snapshot(uid, 7000.0, 7000.0)
    body = open_of(get, token, uid)
    assert by_ticket(body)[1]["unrealized_pnl"] is None
    assert by_ticket(body)[1]["current_price"] is None
    assert body["total_positions"] == 2
    assert body["total_unrealized_pnl"] == 52.5
    assert body["total_unrealized_pnl_pct"] == 0.75


def test_all_current_prices_null_totals_zero(get, token, make_user, rows):
    uid = make_user()
    rows.sync(uid, 1, current_price=None, age=10)
    body = open_of(get, token, uid)
    assert body["total_positions"] == 1
    assert body["total_unrealized_pnl"] == 0


def test_money_rounds_half_away_from_zero(get, token, make_user, rows):
    """Money rounds half away from zero to 2 decimals. 1.125, 0.125 and -0.625 are exact in
    binary, so any careful implementation sees the tie: 1.13, 0.13, -0.63 (not 1.12/0.12/-0.62)."""
    uid = make_user()
    sym = s.unique_symbol("HALF")            # no instruments row: contract size 1
    rows.sync(uid, 1, symbol=sym, volume=1.0, entry_price=10.0, current_price=11.125, age=30)
    rows.sync(uid, 2, symbol=sym, volume=1.0, entry_price=100.0, current_price=100.125, age=20)
    rows.sync(uid, 3, symbol=sym, direction="sell", volume=1.0, entry_price=200.0,
              current_price=200.625, age=10)
    body = open_of(get, token, uid, symbol=sym)
    pnl = {t: p["unrealized_pnl"] for t, p in by_ticket(body).items()}
    assert pnl == {1: 1.13, 2: 0.13, 3: -0.63}
    assert body["total_unrealized_pnl"] == 0.63   # 1.125 + 0.125 - 0.625 = 0.625 → 0.63


def test_money_rounds_negative_ties_away_from_zero(get, token, make_user, rows):
    """-0.125 → -0.13 (away from zero), not -0.12."""
    uid = make_user()
    sym = s.unique_symbol("NEG")
    rows.sync(uid, 1, symbol=sym, volume=1.0, entry_price=100.125, current_price=100.0, age=10)
    body = open_of(get, token, uid)
    assert body["positions"][0]["unrealized_pnl"] == -0.13
    assert body["total_unrealized_pnl"] == -0.13


def test_totals_from_unrounded_values_rounded_once(get, token, make_user, rows):
    """Three P&Ls of 0.006 each show 0.01 each, but the total is round(0.018) = 0.02, not 0.03;
    the percentage is 0.018 / 3 × 100 = 0.6, not from the rounded total (0.67)."""
    uid = make_user()
    sym = s.unique_symbol("ONCE")
    for ticket, age in [(1, 30), (2, 20), (3, 10)]:
        rows.sync(uid, ticket, symbol=sym, volume=1.0, entry_price=1.0, current_price=1.006, age=age)
    rows.snapshot(uid, 3.0, 3.0)
    body = open_of(get, token, uid)
    assert [p["unrealized_pnl"] for p in body["positions"]] == [0.01, 0.01, 0.01]
    assert body["total_unrealized_pnl"] == 0.02
    assert body["total_unrealized_pnl_pct"] == 0.6


def test_pct_uses_the_latest_snapshot(get, token, make_user, rows):
    """total_unrealized_pnl_pct: the total over the *latest* equity × 100, rounded to 2."""
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    rows.sync(uid, 1, volume=0.1, entry_price=1950.5, current_price=1955.75, age=10)  # 52.5
    rows.snapshot(uid, 1000.0, 1000.0, age=3600)
    rows.snapshot(uid, 3000.0, 3500.0, age=60)     # latest: 52.5 / 3000 × 100 = 1.75
    rows.snapshot(uid, 9000.0, 9000.0, age=7200)
    body = open_of(get, token, uid)
    assert body["total_unrealized_pnl_pct"] == 1.75


def test_pct_null_without_snapshot(get, token, make_user, rows):
    uid = make_user()
    rows.sync(uid, 1, age=10)
    assert open_of(get, token, uid)["total_unrealized_pnl_pct"] is None


def test_pct_is_rounded_to_two_decimals(get, token, make_user, rows):
    """52.5 / 7777 × 100 = 0.67506… → 0.68."""
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    rows.sync(uid, 1, volume=0.1, entry_price=1950.5, current_price=1955.75, age=10)
    rows.snapshot(uid, 7777.0, 8000.0)
    assert open_of(get, token, uid)["total_unrealized_pnl_pct"] == 0.68


# --------------------------------------------------------------------------- open / closed


def test_position_closed_by_a_close_row_is_not_listed(get, token, make_user, rows):
    uid = make_user()
    rows.sync(uid, 1, age=60)
    rows.close(uid, 1, age=30)
    rows.sync(uid, 2, age=20)
    assert [p["ticket"] for p in open_of(get, token, uid)["positions"]] == [2]


def test_sync_row_with_close_reason_is_closed(get, token, make_user, rows):
    """Open only when the latest row is a `sync` row with close_reason IS NULL."""
    uid = make_user()
    rows.sync(uid, 1, age=60)
    rows.sync(uid, 1, age=30, close_reason="stop_loss")
    assert open_of(get, token, uid)["positions"] == []


def test_latest_row_decides_even_after_a_close(get, token, make_user, rows):
    """A sync row after a close row is the latest row: the position is open again."""
    uid = make_user()
    first = rows.sync(uid, 1, age=90)
    rows.close(uid, 1, age=60)
    again = rows.sync(uid, 1, age=30, current_price=1952.0)
    p = open_of(get, token, uid)["positions"][0]
    assert p["current_price"] == 1952.0
    assert p["opened_at"] == first.ts and p["updated_at"] == again.ts


def test_failed_sync_row_still_describes_an_open_position(get, token, make_user, rows):
    """Open is decided by event_type and close_reason only, not by the row's status."""
    uid = make_user()
    rows.sync(uid, 1, age=10, status="failed", error_message="read timeout")
    assert [p["ticket"] for p in open_of(get, token, uid)["positions"]] == [1]


def test_latest_by_created_at_not_insertion_order(get, token, make_user, rows):
    """State is the latest row by created_at: a close row written late but dated earlier than
    the newest sync does not close the position; a sync written late but dated before the
    close does not reopen it."""
    uid = make_user()
    rows.sync(uid, 1, age=30, current_price=1999.0)
    rows.close(uid, 1, age=60)                     # inserted after, but older
    rows.close(uid, 2, age=30)
    rows.sync(uid, 2, age=60)                      # inserted after, but older
    body = open_of(get, token, uid)
    assert [p["ticket"] for p in body["positions"]] == [1]
    assert body["positions"][0]["current_price"] == 1999.0


def _low_id():
    return "00000000-0000-4000-8000-" + s.new_uuid()[-12:]


def _high_id():
    return "ffffffff-ffff-4fff-bfff-" + s.new_uuid()[-12:]


def test_ties_on_created_at_are_broken_by_id_descending(get, token, make_user, rows):
    """State is the latest row by (created_at, id) descending."""
    uid = make_user()
    t = rows.at(30)
    # ticket 1: two syncs at the same instant; the higher id wins.
    rows.sync(uid, 1, at=t, id=_high_id(), current_price=1960.0)
    rows.sync(uid, 1, at=t, id=_low_id(), current_price=1940.0)
    # ticket 2: sync and close at the same instant, close has the higher id: closed.
    rows.sync(uid, 2, at=t, id=_low_id())
    rows.close(uid, 2, at=t, id=_high_id())
    # ticket 3: close has the lower id: the sync is the state, open.
    rows.close(uid, 3, at=t, id=_low_id())
    rows.sync(uid, 3, at=t, id=_high_id())
    positions = by_ticket(open_of(get, token, uid))
    assert set(positions) == {1, 3}
    assert positions[1]["current_price"] == 1960.0


def test_fields_come_from_the_latest_row(get, token, make_user, rows):
    """current_price, volume, tp/sl, matched, divergence_reason: the latest row's."""
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    rows.sync(uid, 1, age=90, volume=0.1, current_price=1950.0, matched=2,
              divergence_reason="volume mismatch", take_profit=1990.0)
    rows.sync(uid, 1, age=30, volume=0.2, current_price=1960.5, matched=1,
              take_profit=None, stop_loss=1940.0)
    p = open_of(get, token, uid)["positions"][0]
    assert (p["volume"], p["current_price"], p["take_profit"], p["stop_loss"]) == (0.2, 1960.5, None, 1940.0)
    assert p["matched_with_bot"] is True and p["divergence_reason"] is None
    assert p["unrealized_pnl"] == 200.0   # (1960.5 - 1950.5) × 0.2 × 100


@pytest.mark.parametrize("matched,expected", [(1, True), (0, False), (2, False), (None, False)])
def test_matched_with_bot_is_matched_equals_1(get, token, make_user, rows, matched, expected):
    uid = make_user()
    rows.sync(uid, 1, age=10, matched=matched)
    assert open_of(get, token, uid)["positions"][0]["matched_with_bot"] is expected


def test_opened_at_first_row_updated_at_latest_row(get, token, make_user, rows):
    """`opened_at` the position's first row, `updated_at` its latest (both from created_at)."""
    uid = make_user()
    first = rows.sync(uid, 1, age=3 * 86400)
    rows.sync(uid, 1, age=86400)
    last = rows.sync(uid, 1, age=45)
    body = open_of(get, token, uid)
    p = body["positions"][0]
    assert (p["opened_at"], p["updated_at"]) == (first.ts, last.ts)
    assert body["last_updated_at"] == last.ts


# --------------------------------------------------------------------------- order, filter


def test_order_updated_at_newest_first_then_ticket(get, token, make_user, rows):
    """Ordered by `updated_at` newest first, then ticket ascending; opening time does not matter."""
    uid = make_user()
    rows.sync(uid, 500, age=5000)
    rows.sync(uid, 500, age=10)          # oldest opened, newest updated: first
    rows.sync(uid, 300, age=40)
    rows.sync(uid, 100, age=40)
    rows.sync(uid, 200, age=40)          # same updated_at: 100, 200, 300
    rows.sync(uid, 50, age=90)           # oldest update, smallest ticket: last
    body = open_of(get, token, uid)
    assert [p["ticket"] for p in body["positions"]] == [500, 100, 200, 300, 50]
    assert body["last_updated_at"] == s.rfc3339(rows.at(10))


def test_symbol_filter_is_exact_and_totals_cover_the_filtered(get, token, make_user, rows):
    """Optional exact symbol filter; under ?symbol= the totals cover the filtered positions."""
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    rows.instrument("EURUSD", 100000)
    rows.sync(uid, 1, symbol="XAUUSD", volume=0.1, entry_price=1950.5, current_price=1955.75, age=30)
    rows.sync(uid, 2, symbol="XAUUSD", volume=0.1, entry_price=1950.0, current_price=1949.0, age=40)
    last_eur = rows.sync(uid, 3, symbol="EURUSD", volume=1.0, entry_price=1.25, current_price=1.2625, age=10)
    rows.snapshot(uid, 5000.0, 5000.0)
    all_ = open_of(get, token, uid)
    assert all_["total_positions"] == 3
    assert all_["total_unrealized_pnl"] == 1292.5   # 52.5 - 10 + 1250
    assert all_["total_unrealized_pnl_pct"] == 25.85

    xau = open_of(get, token, uid, symbol="XAUUSD")
    assert [p["ticket"] for p in xau["positions"]] == [1, 2]
    assert xau["total_positions"] == 2
    assert xau["total_unrealized_pnl"] == 42.5
    assert xau["total_unrealized_pnl_pct"] == 0.85
    assert xau["last_updated_at"] == s.rfc3339(rows.at(30))

    eur = open_of(get, token, uid, symbol="EURUSD")
    assert [p["ticket"] for p in eur["positions"]] == [3]
    assert eur["last_updated_at"] == last_eur.ts

    none = open_of(get, token, uid, symbol="XAU")    # exact, not a prefix
    assert none["positions"] == [] and none["total_unrealized_pnl"] == 0
    assert none["last_updated_at"] is None
    assert none["total_unrealized_pnl_pct"] == 0


def test_symbol_with_dot_and_underscore(get, token, make_user, rows):
    """`^[A-Z0-9._]{1,20}$` allows dots and underscores."""
    uid = make_user()
    sym = ("US30.C_" + s.new_uuid().replace("-", "").upper())[:20]
    rows.sync(uid, 1, symbol=sym, age=10)
    body = open_of(get, token, uid, symbol=sym)
    assert [p["symbol"] for p in body["positions"]] == [sym]


@pytest.mark.parametrize("symbol", ["xauusd", "XAU-USD", "XAU USD", "", "A" * 21, "XAU/USD",
                                    "XAU'--", "X%", "ÄBC", "XAUUSD\n", "*"], ids=repr)
def test_invalid_symbol_is_400(get, token, stack, symbol):
    """symbol must match `^[A-Z0-9._]{1,20}$`; anything else is 400 bad_request naming it."""
    body = s.assert_error(get(s.OPEN, token(s.new_uuid()), params={"symbol": symbol}), 400,
                          "bad_request", secrets=stack.secrets)
    assert "symbol" in body["message"], body


def test_unknown_parameters_are_ignored(get, token, make_user, rows):
    uid = make_user()
    rows.sync(uid, 1, age=10)
    body = open_of(get, token, uid, sym="xx", page="2")
    assert [p["ticket"] for p in body["positions"]] == [1]


def test_guard_rows_are_not_positions(get, token, make_user, rows):
    uid = make_user()
    rows.guard(uid, age=10, level="critical")
    assert open_of(get, token, uid)["positions"] == []
