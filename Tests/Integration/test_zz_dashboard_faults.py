"""The dashboard while Postgres is down: a 503 banner, the figures kept, and the page whole
again by itself once Postgres is back (a real outage: scripts/stack.sh pg-stop). Runs with the
other fault tests, last (marker `faults`)."""
import pytest
from selenium.webdriver.common.by import By

import support as s
from browser import sign_in, text_of, wait_for

pytestmark = pytest.mark.faults


def test_postgres_down_shows_the_unavailable_banner_then_recovers(page, stack, stack_sh, token, make_user, rows):
    user = make_user()
    rows.sync(user, s.unique_ticket(), symbol="XAUUSD")
    rows.snapshot(user, 17000.0, 20000.0)
    sign_in(page, token(user))
    wait_for(lambda: text_of(page, "connection") == "● Live", 5, "the live stream")
    wait_for(lambda: "15.00 %" in text_of(page, "drawdown-text"), 5, "the drawdown")
    # Without events the page asks only when told: block the stream, so it polls (5 s).
    page.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/stream"]})
    stack_sh("pg-stop")
    try:
        page.execute_script("document.dispatchEvent(new Event('visibilitychange'))")  # reconnect now
        banner = wait_for(lambda: page.find_element(By.ID, "banner-unavailable"), 20, "the unavailable banner")
        assert "unavailable" in banner.text and "retrying in" in banner.text, banner.text
        assert banner.get_attribute("role") == "alert"
        assert "15.00 %" in text_of(page, "drawdown-text"), "the figures shown are kept"
    finally:
        stack_sh("pg-start")
    wait_for(lambda: not page.find_elements(By.ID, "banner-unavailable"), 60, "the banner to clear after pg-start")
    assert "15.00 %" in text_of(page, "drawdown-text")
