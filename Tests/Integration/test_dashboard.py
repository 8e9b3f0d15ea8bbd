"""The dashboard (web/) in a real browser: chromium, headless, driven by selenium, loading the
page from the test stack through nginx like a trader's browser. Each test signs in with its own
user's token and checks what a person sees against what the API answers for that user
(docs/design/dashboard.md)."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import sys
import time

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import support as s
from browser import console_problems, number, set_hidden, set_offline, sign_in, text_of, wait_for


def api(stack, token, path):
    resp = requests.get(stack.base_url + path, headers=s.bearer(token), timeout=10)
    assert resp.status_code == 200, resp.text[:200]
    return resp.json()


def shown_positions(driver) -> dict[int, dict]:
    out = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#positions-table tbody tr.position"):
        cells = row.find_elements(By.TAG_NAME, "td")
        out[int(row.get_attribute("data-ticket"))] = {
            "ticket": int(cells[0].text), "symbol": cells[1].text, "side": cells[2].text,
            "pnl_text": cells[6].text, "pnl_class": cells[6].get_attribute("class")}
    return out


@pytest.fixture
def account(make_user, rows):
    """A user with three open positions (P&L +52.50, -100.00, +85.00), a 15 % drawdown and
    63 log rows (60 of them old guard rows: more than one page of the log)."""
    user = make_user()
    tickets = [s.unique_ticket() for _ in range(3)]
    rows.guards_bulk(user, 60, first_age=1000, level="normal")
    rows.sync(user, tickets[0], symbol="XAUUSD", direction="buy", volume=0.1,
              entry_price=1950.5, current_price=1955.75, age=30)
    rows.sync(user, tickets[1], symbol="EURUSD", direction="sell", volume=0.5,
              entry_price=1.085, current_price=1.087, matched=2, divergence_reason="volume_mismatch", age=20)
    rows.sync(user, tickets[2], symbol="XAUUSD", direction="sell", volume=0.2,
              entry_price=1960.0, current_price=1955.75, age=10)
    rows.snapshot(user, 17000.0, 20000.0)
    return user, tickets


def test_the_page_shows_the_numbers_the_api_returns_for_the_user(page, stack, token, account):
    user, tickets = account
    tok = token(user)
    sign_in(page, tok)
    wait_for(lambda: len(shown_positions(page)) == 3, 5, "three positions on screen")
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")

    positions = api(stack, tok, "/api/v1/positions/open")
    shown = shown_positions(page)
    assert set(shown) == {p["ticket"] for p in positions["positions"]} == set(tickets)
    for p in positions["positions"]:
        row = shown[p["ticket"]]
        assert row["symbol"] == p["symbol"]
        assert number(row["pnl_text"]) == p["unrealized_pnl"]
        # Colour is never the only signal: the sign is in the text too.
        sign = "+" if p["unrealized_pnl"] > 0 else "-"
        assert row["pnl_text"].startswith(sign)
        assert ("positive" if sign == "+" else "negative") in row["pnl_class"]
        assert row["side"].lower().startswith(p["direction"])
    assert number(text_of(page, "positions-total-pnl")) == positions["total_unrealized_pnl"] == 37.5

    status = api(stack, tok, "/api/v1/reconciliation/status")
    badge = page.find_element(By.ID, "status-badge")
    assert badge.get_attribute("data-value") == status["status"] == "warning"
    assert status["status"].lower() in badge.text.lower()
    assert int(text_of(page, "status-total-syncs")) == status["total_syncs"] == 3
    assert int(text_of(page, "status-divergences")) == status["divergences_detected"] == 1

    guards = api(stack, tok, "/api/v1/guards/status")
    drawdown = guards["drawdown_guard"]["current_drawdown_pct"]
    assert drawdown == 15.0
    assert number(text_of(page, "drawdown-text").split("%")[0]) == drawdown
    assert "warning" in text_of(page, "drawdown-text")
    assert number(text_of(page, "drawdown-equity")) == guards["drawdown_guard"]["current_equity"]
    assert not page.find_elements(By.ID, "banner-close-now")

    shot = s.run_dir() / "results" / "dashboard.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert page.save_screenshot(str(shot))
    problems = console_problems(page)
    assert not problems, problems


def test_the_symbol_filter_shows_the_apis_filtered_positions_and_totals(page, stack, token, account):
    user, tickets = account
    tok = token(user)
    sign_in(page, tok)
    wait_for(lambda: len(shown_positions(page)) == 3, 5, "three positions on screen")
    box = page.find_element(By.ID, "symbol")
    box.send_keys("xauusd", Keys.ENTER)
    filtered = api(stack, tok, "/api/v1/positions/open?symbol=XAUUSD")
    wait_for(lambda: set(shown_positions(page)) == {p["ticket"] for p in filtered["positions"]}, 5,
             "only the XAUUSD positions")
    assert {r["symbol"] for r in shown_positions(page).values()} == {"XAUUSD"}
    assert number(text_of(page, "positions-total-pnl")) == filtered["total_unrealized_pnl"] == 137.5
    # A symbol the API would refuse is refused before any request.
    box.clear()
    box.send_keys("XAU/USD", Keys.ENTER)
    assert "symbol" in text_of(page, "symbol-error").lower()
    page.find_element(By.ID, "symbol-clear").click()
    wait_for(lambda: len(shown_positions(page)) == 3, 5, "all positions again")


def test_a_ticket_opens_the_position_by_keyboard(page, stack, token, account):
    user, tickets = account
    tok = token(user)
    sign_in(page, tok)
    wait_for(lambda: len(shown_positions(page)) == 3, 5, "three positions on screen")
    button = page.find_element(By.CSS_SELECTOR, f'tr[data-ticket="{tickets[1]}"] button.ticket')
    button.send_keys(Keys.ENTER)
    dialog = page.find_element(By.ID, "position-dialog")
    wait_for(lambda: dialog.get_attribute("open") is not None and str(tickets[1]) in text_of(page, "position-title"),
             5, "the position's dialog")
    detail = api(stack, tok, f"/api/v1/positions/{tickets[1]}")
    assert "EURUSD" in text_of(page, "position-title") and "open" in text_of(page, "position-title")
    assert number(re.search(r"Unrealized P&L\s*(\S+)", text_of(page, "position-fields")).group(1)) == detail["unrealized_pnl"]
    page.find_element(By.ID, "position-close").send_keys(Keys.ENTER)
    wait_for(lambda: dialog.get_attribute("open") is None, 5, "the dialog to close")


def test_a_critical_guard_row_shows_its_banner_within_2_s_without_a_reload(page, stack, token, account, rows):
    user, _ = account
    sign_in(page, token(user))
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    page.execute_script("window.__sameDocument = 42")
    started = time.monotonic()
    rows.guard(user, symbol="XAUUSD", condition="price_gap", level="critical", price_gap_pct=3.25, age=1)
    banner = wait_for(lambda: page.find_element(By.ID, "banner-close-now"), 2.0 - (time.monotonic() - started),
                      "the close-now banner")
    elapsed = time.monotonic() - started
    assert "XAUUSD" in banner.text and "3.25 %" in banner.text, banner.text
    assert banner.get_attribute("role") == "alert"
    assert page.execute_script("return window.__sameDocument") == 42, "the page reloaded"
    assert elapsed < 2.0
    assert "critical" in page.find_element(By.ID, "guards-system").get_attribute("data-value")


def test_load_older_follows_the_log_cursor(page, stack, token, account):
    user, _ = account
    sign_in(page, token(user))
    rows_shown = lambda: len(page.find_elements(By.CSS_SELECTOR, "#logs-table tbody tr"))  # noqa: E731
    wait_for(lambda: rows_shown() == 50, 5, "the first page of the log")
    older = page.find_element(By.ID, "logs-older")
    assert older.is_displayed()
    older.click()
    wait_for(lambda: rows_shown() == 63, 5, "the older rows")
    assert not older.is_displayed()
    assert page.find_element(By.ID, "logs-end").is_displayed()
    ids = [r.get_attribute("data-id") for r in page.find_elements(By.CSS_SELECTOR, "#logs-table tbody tr")]
    assert len(set(ids)) == 63


def test_a_refused_token_shows_the_sign_in_again(page, stack, jwt, make_user):
    user = make_user()
    forged = jwt(s.claims(user), key=b"not-the-secret-not-the-secret-not-the-secret")
    sign_in(page, forged)
    wait_for(lambda: page.find_element(By.ID, "sign-in").is_displayed()
             and "refused" in text_of(page, "sign-in-error"), 5, "the sign-in form with the reason")
    assert not page.find_element(By.ID, "dashboard").is_displayed()
    assert page.execute_script("return sessionStorage.length") == 0
    # Not a JWT at all: said at once.
    sign_in(page, "hello")
    assert "not a JWT" in text_of(page, "sign-in-error")


def test_without_the_stream_the_page_polls_and_still_updates(page, stack, token, account, rows):
    user, _ = account
    page.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/stream"]})
    sign_in(page, token(user))
    wait_for(lambda: text_of(page, "connection").startswith("Polling"), 10, "the polling fallback")
    rows.snapshot(user, 15000.0, 20000.0, age=5)  # 25 %: critical
    wait_for(lambda: "25.00 %" in text_of(page, "drawdown-text"), 8, "the new drawdown by polling")
    assert "Drawdown 25.00 % is critical" in page.find_element(By.ID, "banner-close-now").text


def test_prices_the_demo_writer_moves_reach_the_page_live(page, stack, token, account):
    user, tickets = account
    tok = token(user)
    sign_in(page, tok)
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    before = {p["ticket"]: p["current_price"] for p in api(stack, tok, "/api/v1/positions/open")["positions"]}
    page.execute_script("window.__sameDocument = 7")
    env = {**os.environ, "BASE_URL": stack.base_url, "JWT_SECRET_KEY": stack["JWT_SECRET_KEY"]}
    writer = subprocess.run(
        [sys.executable, str(s.REPO_ROOT / "scripts" / "demo_writer.py"), "--user", user,
         "--ticks", "3", "--interval", "0.3", "--seed", "7", "--guard-chance", "0"],
        env=env, capture_output=True, text=True, timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert "tick 3: 3 positions moved" in writer.stdout, writer.stdout
    final = api(stack, tok, "/api/v1/positions/open")
    prices = {p["ticket"]: p["current_price"] for p in final["positions"]}
    assert prices != before, "the writer moved no price"

    def page_shows_the_final_prices():
        rows = page.find_elements(By.CSS_SELECTOR, "#positions-table tbody tr.position")
        shown = {int(r.get_attribute("data-ticket")): float(r.find_elements(By.TAG_NAME, "td")[5].text)
                 for r in rows}
        return shown == prices
    wait_for(page_shows_the_final_prices, 3, "the writer's last prices on the page")
    assert number(text_of(page, "positions-total-pnl")) == final["total_unrealized_pnl"]
    assert page.execute_script("return window.__sameDocument") == 7, "the page reloaded"


def test_signing_out_forgets_the_token_and_it_never_reaches_a_url(page, stack, token, account):
    user, _ = account
    tok = token(user)
    sign_in(page, tok)
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    assert tok not in page.current_url
    assert page.execute_script("return sessionStorage.getItem('trading-api.token')") == tok
    # The stream too is read with the token in Authorization: the page sets no cookie at all.
    assert page.get_cookies() == []
    page.find_element(By.ID, "sign-out").click()
    wait_for(lambda: page.find_element(By.ID, "sign-in").is_displayed(), 5, "the sign-in form")
    assert page.execute_script("return sessionStorage.length") == 0
    assert tok not in page.current_url


def test_a_hidden_tab_pauses_and_catches_up_when_shown(page, stack, token, account, rows):
    user, _ = account
    sign_in(page, token(user))
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    set_hidden(page, True)
    wait_for(lambda: text_of(page, "connection").startswith("Paused"), 2, "the page to pause")
    rows.snapshot(user, 18000.0, 20000.0, age=5)  # 10 %
    time.sleep(1.5)
    assert "15.00 %" in text_of(page, "drawdown-text"), "a hidden tab kept fetching"
    set_hidden(page, False)
    wait_for(lambda: "10.00 %" in text_of(page, "drawdown-text"), 3, "the catch-up once shown")
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the stream again")


def test_rate_limited_the_page_says_so_backs_off_and_recovers(page, stack, token, account, rows):
    user, _ = account
    tok = token(user)
    sign_in(page, tok)
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    stop = threading.Event()

    def exhaust_the_tokens_limit():  # the same token's requests, far above its rate
        with requests.Session() as session:
            while not stop.is_set():
                session.get(stack.base_url + "/api/v1/guards/status", headers=s.bearer(tok), timeout=5)

    hammer = threading.Thread(target=exhaust_the_tokens_limit, daemon=True)
    hammer.start()
    try:
        time.sleep(0.5)
        rows.snapshot(user, 16000.0, 20000.0, age=5)  # 20 %: the page wants the views now
        banner = wait_for(lambda: page.find_element(By.ID, "banner-rate-limited"), 5, "the rate-limit banner")
        assert "Too many requests" in banner.text and "next try in" in banner.text, banner.text
    finally:
        stop.set()
        hammer.join(10)
    wait_for(lambda: not page.find_elements(By.ID, "banner-rate-limited"), 40, "the banner to clear")
    wait_for(lambda: "20.00 %" in text_of(page, "drawdown-text"), 5, "the views after the back-off")


def test_a_lost_connection_shows_a_banner_and_recovers(page, stack, token, account, rows):
    user, _ = account
    sign_in(page, token(user))
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    set_offline(page, True)
    try:
        rows.snapshot(user, 19000.0, 20000.0, age=5)  # 5 %
        banner = wait_for(lambda: page.find_element(By.ID, "banner-network"), 15, "the connection-lost banner")
        assert "Connection lost" in banner.text and "retrying in" in banner.text, banner.text
        assert "15.00 %" in text_of(page, "drawdown-text"), "the figures shown are kept"
    finally:
        set_offline(page, False)
    wait_for(lambda: "5.00 %" in text_of(page, "drawdown-text"), 40, "the views once back online")
    wait_for(lambda: not page.find_elements(By.ID, "banner-network"), 5, "the banner to clear")
