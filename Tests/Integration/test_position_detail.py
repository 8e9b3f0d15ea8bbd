"""GET /api/v1/positions/{ticket}

One position of the user's, open or closed; 404 when it is not theirs or does not exist.
Returns the open-positions object plus "open", "close_reason", "closed_price",
"realized_pnl" (pnl_gbp of the close row). A closed position's unrealized_pnl is null.
A non-numeric {ticket} is 400.
"""
import pytest

import support as s


def detail_of(get, token, uid, ticket):
    body = s.ok(get(s.position_path(ticket), token(uid)))
    assert set(body) == s.POSITION_DETAIL_KEYS, f"keys: {sorted(body)}"
    assert isinstance(body["open"], bool)
    return body


def test_open_position(get, token, make_user, rows):
    """An open position: the list object plus open true and null close fields."""
    uid = make_user()
    rows.instrument("XAUUSD", 100)
    first = rows.sync(uid, 4242, age=300, current_price=1940.0, matched=2, divergence_reason="x")
    last = rows.sync(uid, 4242, age=20, volume=0.1, entry_price=1950.5, current_price=1955.75,
                     take_profit=1970.0, stop_loss=1930.0, matched=1)
    assert detail_of(get, token, uid, 4242) == {
        "ticket": 4242, "symbol": "XAUUSD", "direction": "buy", "volume": 0.1,
        "entry_price": 1950.5, "current_price": 1955.75, "take_profit": 1970.0,
        "stop_loss": 1930.0, "unrealized_pnl": 52.5, "matched_with_bot": True,
        "divergence_reason": None, "opened_at": first.ts, "updated_at": last.ts,
        "open": True, "close_reason": None, "closed_price": None, "realized_pnl": None}


def test_detail_of_an_open_position_equals_its_list_entry(get, token, make_user, rows):
    """`GET /positions/{ticket}` returns the same object (plus the four close fields)."""
    uid = make_user()
    rows.instrument("EURUSD", 100000)
    rows.sync(uid, 9, symbol="EURUSD", direction="sell", volume=0.3, entry_price=1.1,
              current_price=1.0987, matched=0, age=30)
    listed = s.ok(get(s.OPEN, token(uid)))["positions"][0]
    detail = detail_of(get, token, uid, 9)
    assert {k: detail[k] for k in s.POSITION_KEYS} == listed
    assert detail["unrealized_pnl"] == 39.0   # -(1.0987 - 1.1) × 0.3 × 100000


def test_closed_position(get, token, make_user, rows):
    """Closed: open false, close_reason and closed_price of the close row, realized_pnl its
    pnl_gbp (passed through as stored), unrealized_pnl null; the state is the close row."""
    uid = make_user()
    first = rows.sync(uid, 777, age=600, current_price=1951.0)
    rows.sync(uid, 777, age=300, current_price=1957.0)
    close = rows.close(uid, 777, age=60, current_price=1958.25, matched=1,
                       close_reason="take_profit", closed_price=1958.3, pnl_gbp=-12.345)
    assert detail_of(get, token, uid, 777) == {
        "ticket": 777, "symbol": "XAUUSD", "direction": "buy", "volume": 0.1,
        "entry_price": 1950.5, "current_price": 1958.25, "take_profit": None, "stop_loss": None,
        "unrealized_pnl": None, "matched_with_bot": True, "divergence_reason": None,
        "opened_at": first.ts, "updated_at": close.ts,
        "open": False, "close_reason": "take_profit", "closed_price": 1958.3,
        "realized_pnl": -12.345}


def test_closed_position_is_not_in_the_open_list_but_is_found(get, token, make_user, rows):
    uid = make_user()
    rows.sync(uid, 31, age=100)
    rows.close(uid, 31, age=50)
    assert s.ok(get(s.OPEN, token(uid)))["positions"] == []
    assert detail_of(get, token, uid, 31)["open"] is False


def test_position_closed_by_sync_row_with_close_reason(get, token, make_user, rows):
    """Open only when the latest row is a sync row with close_reason IS NULL."""
    uid = make_user()
    rows.sync(uid, 32, age=100)
    rows.sync(uid, 32, age=50, close_reason="stop_out", closed_price=1900.0)
    body = detail_of(get, token, uid, 32)
    assert body["open"] is False
    assert body["close_reason"] == "stop_out"
    assert body["closed_price"] == 1900.0
    assert body["unrealized_pnl"] is None


def test_reopened_position_is_open(get, token, make_user, rows):
    """The latest row decides: a sync after a close is open again."""
    uid = make_user()
    rows.sync(uid, 33, age=100)
    rows.close(uid, 33, age=60)
    rows.sync(uid, 33, age=30)
    body = detail_of(get, token, uid, 33)
    assert body["open"] is True
    assert body["close_reason"] is None
    assert body["unrealized_pnl"] is not None


def test_close_row_with_only_required_fields(get, token, make_user, rows):
    """A close row with null current_price/pnl: nulls pass through, no error."""
    uid = make_user()
    rows.sync(uid, 34, age=100)
    rows.close(uid, 34, age=50, current_price=None, closed_price=None, pnl_gbp=None,
               close_reason=None, matched=None)
    body = detail_of(get, token, uid, 34)
    assert body["open"] is False
    assert (body["realized_pnl"], body["closed_price"], body["current_price"]) == (None, None, None)
    assert body["matched_with_bot"] is False


def test_large_ticket(get, token, make_user, rows):
    """Tickets are bigint: the path takes them and the body prints them exactly."""
    uid = make_user()
    big = 2**62 + 12345
    rows.sync(uid, big, age=10)
    assert detail_of(get, token, uid, big)["ticket"] == big


def test_nonexistent_ticket_is_404(get, token, make_user, rows, stack):
    uid = make_user()
    rows.sync(uid, 1, age=10)
    s.assert_error(get(s.position_path(2), token(uid)), 404, "not_found", secrets=stack.secrets)
    s.assert_error(get(s.position_path(0), token(uid)), 404, "not_found")


def test_another_users_ticket_is_404(get, token, make_user, rows, stack):
    """404 when it is not theirs — the same answer as a ticket that does not exist."""
    owner, other = make_user(), make_user()
    rows.sync(owner, 5555, age=10)
    assert detail_of(get, token, owner, 5555)["ticket"] == 5555
    body = s.assert_error(get(s.position_path(5555), token(other)), 404, "not_found",
                          secrets=stack.secrets)
    assert owner not in body["message"]


def test_guard_rows_are_not_positions(get, token, make_user, rows):
    uid = make_user()
    rows.guard(uid, age=10)
    s.assert_error(get(s.position_path(0), token(uid)), 404, "not_found")


@pytest.mark.parametrize("ticket", ["abc", "12a", "1.5", "0x10", "1e3", "%20", "12%2034"], ids=repr)
def test_non_numeric_ticket_is_400(get, token, make_user, stack, ticket):
    """A non-numeric {ticket} is 400 bad_request."""
    uid = make_user()
    s.assert_error(get(s.position_path(ticket), token(uid)), 400, "bad_request",
                   secrets=stack.secrets)


@pytest.mark.parametrize("ticket", ["99999999999999999999", "9223372036854775808"])
def test_ticket_beyond_bigint_is_a_clean_4xx(get, token, make_user, stack, ticket):
    """Digits beyond bigint: no such position can exist; a clean 400 or 404, never 500."""
    uid = make_user()
    s.assert_error(get(s.position_path(ticket), token(uid)), (400, 404), None,
                   secrets=stack.secrets)
