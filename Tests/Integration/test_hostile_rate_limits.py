"""Rate limits against a hostile client: per address and per token, 429 `rate_limited` JSON
with Retry-After (whole seconds); a client under its limit is never limited, whatever the
flooding client next to it does. (test_rate_limit.py covers the plain per-token case.)

The per-address case lowers the stack's per-address limit for a few seconds
(`stack.sh reload-nginx`) and puts the recorded one back; it floods from 127.0.0.2 while a
polite client at 127.0.0.3 stays under the limit. Marked `faults` (it reloads nginx), so it
runs with the other stack-changing tests, after the ordinary ones.
"""
import concurrent.futures as cf
import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import pytest

import support as s


class Answer:
    """Enough of a response for support.assert_error()."""

    def __init__(self, resp: http.client.HTTPResponse, url: str):
        self.status_code = resp.status
        self.headers = s._Headers(resp.getheaders())
        self.content = resp.read()
        self.text = self.content.decode("utf-8", "replace")
        self.url = url

    def json(self):
        return json.loads(self.text)


def get_from(stack, source_ip: str, path: str, tok: str | None = None) -> Answer:
    """One GET on a new connection from `source_ip` (any 127.x address is this host)."""
    u = urlsplit(stack.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10, source_address=(source_ip, 0))
    try:
        conn.request("GET", path, headers=s.bearer(tok) if tok else {})
        return Answer(conn.getresponse(), f"{stack.base_url}{path} from {source_ip}")
    finally:
        conn.close()


def polite(stack, source_ip, path, tok, rate, seconds, out: list, stop: threading.Event):
    interval = 1.0 / rate
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        started = time.monotonic()
        out.append(get_from(stack, source_ip, path, tok).status_code)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def flood(stack, source_ip, path, tok, total, workers=24) -> list[Answer]:
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda _: get_from(stack, source_ip, path, tok), range(total)))


def check_429s(stack, answers):
    limited = [a for a in answers if a.status_code == 429]
    for a in limited[:10]:
        s.assert_error(a, 429, "rate_limited", secrets=stack.secrets)
        s.assert_retry_after(a)
    return limited


def test_flooding_token_is_limited_a_polite_token_never(stack, token, make_user):
    """Token A floods (well over its burst) while token B, same address, asks at half its
    rate: A gets 429 JSON with Retry-After; B is never limited."""
    rate = s.parse_rate(stack["RATE_LIMIT_PER_TOKEN"])
    burst = int(stack["RATE_BURST_PER_TOKEN"])
    time.sleep(1.0 + burst / rate / 4)                 # earlier tests' buckets drain
    tok_a, tok_b = token(make_user()), token(make_user())
    statuses_b: list = []
    stop = threading.Event()
    polite_thread = threading.Thread(target=polite, daemon=True, args=(
        stack, "127.0.0.1", s.STATUS, tok_b, rate / 2, 3.0, statuses_b, stop))
    polite_thread.start()
    try:
        answers = flood(stack, "127.0.0.1", s.STATUS, tok_a, int(3 * (burst + rate)))
    finally:
        polite_thread.join(timeout=20)
        stop.set()
    assert check_429s(stack, answers), "the flooding token was never limited"
    assert {a.status_code for a in answers} <= {200, 429}
    assert statuses_b and set(statuses_b) == {200}, statuses_b
    time.sleep(min(10.0, burst / rate + 1.0))


@pytest.fixture
def low_address_limit(stack):
    """Per-address limit 10 r/s, burst 10 for the test; the recorded limits afterwards."""
    saved = {k: stack[k] for k in s.RATE_LIMIT_KEYS}

    def reload(limits):
        s.run_stack_sh("reload-nginx", env=limits, timeout=60)
        time.sleep(1.0)    # old nginx workers drain

    reload({**saved, "RATE_LIMIT_PER_ADDR": "10r/s", "RATE_BURST_PER_ADDR": "10"})
    try:
        yield 10.0, 10
    finally:
        reload(saved)


@pytest.mark.faults
def test_flooding_address_is_limited_a_polite_address_never(stack, low_address_limit):
    """127.0.0.2 floods the health check (no token: only the address counts) and gets 429
    JSON with Retry-After; 127.0.0.3 at 4 r/s, under the 10 r/s limit, is never limited."""
    rate, burst = low_address_limit
    statuses_polite: list = []
    stop = threading.Event()
    polite_thread = threading.Thread(target=polite, daemon=True, args=(
        stack, "127.0.0.3", s.HEALTH, None, rate * 0.4, 3.0, statuses_polite, stop))
    polite_thread.start()
    try:
        answers = flood(stack, "127.0.0.2", s.HEALTH, None, 4 * (burst + int(rate)))
    finally:
        polite_thread.join(timeout=20)
        stop.set()
    limited = check_429s(stack, answers)
    assert len(limited) >= burst, f"only {len(limited)} of {len(answers)} flooding requests limited"
    assert {a.status_code for a in answers} <= {200, 429}
    assert statuses_polite and set(statuses_polite) == {200}, statuses_polite
