"""Rate limiting: nginx limits requests per client address and per bearer token (limit_req),
answering 429 `rate_limited` JSON with Retry-After (whole seconds).

The test stack's per-token limit is RATE_LIMIT_PER_TOKEN (e.g. "20r/s") with burst
RATE_BURST_PER_TOKEN. These tests send without the 429 retry the other tests use.
"""
import concurrent.futures as cf
import threading
import time

import requests

import support as s


def limits(stack):
    return s.parse_rate(stack["RATE_LIMIT_PER_TOKEN"]), int(stack["RATE_BURST_PER_TOKEN"])


def test_slow_client_is_never_limited(stack, token):
    """A client well under the limit (half the rate) is never answered 429."""
    rate, _ = limits(stack)
    time.sleep(1.0)                                   # let earlier tests' buckets drain
    tok = token(s.new_uuid())
    interval = max(2.0 / rate, 0.02)
    count = max(8, min(30, int(3.0 / interval)))
    statuses = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.monotonic()
            resp = session.get(stack.base_url + s.STATUS, headers=s.bearer(tok), timeout=10)
            statuses.append(resp.status_code)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    assert statuses == [200] * count, statuses


def test_burst_above_the_limit_is_429_json(stack, token):
    """A burst with one token well above RATE_BURST_PER_TOKEN gets 429 rate_limited JSON with
    Retry-After; the rest are answered normally; nothing fails otherwise."""
    rate, burst = limits(stack)
    tok = token(s.new_uuid())
    total = int(min(400, max(60, 3 * (burst + rate))))
    local = threading.local()

    def fetch(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session.get(stack.base_url + s.STATUS, headers=s.bearer(tok), timeout=30)

    try:
        with cf.ThreadPoolExecutor(max_workers=48) as pool:
            responses = list(pool.map(fetch, range(total)))
        codes = [r.status_code for r in responses]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, f"{total} concurrent requests with burst {burst} were never limited"
        assert set(codes) <= {200, 429}, sorted(set(codes))
        assert codes.count(200) >= 1
        for resp in limited[:20]:
            s.assert_error(resp, 429, "rate_limited", secrets=stack.secrets)
            s.assert_retry_after(resp)
    finally:
        # Drain the token's and the address's buckets before the next module.
        time.sleep(min(10.0, burst / rate + 1.0))
