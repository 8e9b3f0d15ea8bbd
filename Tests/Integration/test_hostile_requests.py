"""Hostile paths, queries, bodies and headers, sent raw (requests would normalise them):
each is answered with the right status and the JSON error body — by nginx or by a worker —
never a 5xx, never a crash (the module checks that no worker process was replaced).

- paths: traversal (plain, percent-encoded, backslashes, double slashes), %00, non-ASCII and
  invalid UTF-8, numbers that are not plain decimal digits or overflow a bigint;
- queries: repeated and overlong parameters, empty names and values, %00, invalid UTF-8,
  SQL meta-characters in values and in parameter names;
- 1 MB bodies (Content-Length, chunked, on GET and POST), 200 headers, oversized headers,
  request-smuggling framing (Content-Length with Transfer-Encoding), bad request lines.
"""
import pytest

import support as s
from hostile import no_worker_crashes  # noqa: F401  (module fixture)

pytestmark = pytest.mark.usefixtures("no_worker_crashes")


def raw_get(stack, target: bytes | str, tok: str | None = None, extra: bytes = b""):
    if isinstance(target, str):
        target = target.encode("utf-8")
    head = b"GET " + target + b" HTTP/1.1"
    if tok:
        head += b"\r\nAuthorization: Bearer " + tok.encode()
    if extra:
        head += b"\r\n" + extra
    return s.raw_http(stack.base_url, head)


@pytest.fixture
def tok(token):
    return token(s.new_uuid())


# (request target, expected status, expected error code or None for a 200 view/health)
PATHS = [
    # traversal: nginx normalises the path before routing; above the root is 400
    ("/api/v1/reconciliation/../health", 200, None),
    ("/api/v1/./health", 200, None),
    ("/api/v1//health", 200, None),
    ("//api/v1/health", 200, None),
    ("/api/v1/%68ealth", 200, None),
    ("/api/v1/../../etc/passwd", 404, "not_found"),
    ("/../../etc/passwd", 400, "bad_request"),
    ("/api/v1/%2e%2e/%2e%2e/etc/passwd", 404, "not_found"),
    ("/api/v1/positions/..%2f..%2f..%2fetc%2fpasswd", 404, "not_found"),
    ("/api/v1/positions/%2e%2e", 404, "not_found"),
    ("/api/v1/positions/1%2f2", 404, "not_found"),
    ("/api/v1/positions/..\\..\\..\\etc\\passwd", 400, "bad_request"),
    ("/api/v1/positions/%5c..%5c..%5cetc", 400, "bad_request"),
    ("/api/v1/health/", 404, "not_found"),
    ("/api/v1/positions/1/", 404, "not_found"),
    ("/API/V1/HEALTH", 404, "not_found"),
    ("/api/v1/positions/1/../../../../../../etc/shadow", 400, "bad_request"),
    ("*", 400, "bad_request"),
    # NUL: nginx refuses a decoded NUL in the path
    ("/api/v1/positions/%00", 400, "bad_request"),
    ("/api/v1/positions/1%00", 400, "bad_request"),
    ("/api/v1/health%00.json", 400, "bad_request"),
    ("/api/v1/positions/%", 400, "bad_request"),
    ("/api/v1/positions/%zz", 400, "bad_request"),
    # not a plain decimal bigint
    ("/api/v1/positions/+1", 400, "bad_request"),
    ("/api/v1/positions/-1", 400, "bad_request"),
    ("/api/v1/positions/0x10", 400, "bad_request"),
    ("/api/v1/positions/1e3", 400, "bad_request"),
    ("/api/v1/positions/1.0", 400, "bad_request"),
    ("/api/v1/positions/%201", 400, "bad_request"),
    ("/api/v1/positions/99999999999999999999", 400, "bad_request"),
    ("/api/v1/positions/9223372036854775808", 400, "bad_request"),
    ("/api/v1/positions/" + "9" * 4000, 400, "bad_request"),
    ("/api/v1/positions/9223372036854775807", 404, "not_found"),
    ("/api/v1/positions/00000000000000000001", 400, "bad_request"),
    # SQL in the path
    ("/api/v1/positions/1;DROP%20TABLE%20users", 400, "bad_request"),
    ("/api/v1/positions/1%27%20OR%20%271%27=%271", 400, "bad_request"),
    ("/api/v1/positions/1%20OR%201=1", 400, "bad_request"),
    # non-ASCII and invalid UTF-8
    ("/api/v1/positions/%E2%80%AE1", 400, "bad_request"),
    ("/api/v1/positions/\uff11", 400, "bad_request"),           # fullwidth digit one
    ("/api/v1/positions/\u0661", 400, "bad_request"),           # Arabic-Indic digit one
    ("/api/v1/positions/%ff%fe", 400, "bad_request"),
    ("/api/v1/positions/%c0%ae%c0%ae", 400, "bad_request"),     # overlong UTF-8 dots
    ("/api/v1/reconciliation/st\u00e4tus", 404, "not_found"),
]


@pytest.mark.parametrize("target,status,code", PATHS, ids=[p[0][:60] for p in PATHS])
def test_hostile_path(stack, tok, target, status, code):
    resp = raw_get(stack, target, tok)
    if code is None:
        assert resp.status_code == status, (resp.status_code, resp.text[:300])
        s.assert_json_response(resp)
    else:
        s.assert_error(resp, status, code, secrets=stack.secrets)


def test_raw_invalid_utf8_bytes_in_path(stack, tok):
    resp = raw_get(stack, b"/api/v1/positions/\xff\xfe\x80", tok)
    s.assert_error(resp, 400, "bad_request", secrets=stack.secrets)
    resp = raw_get(stack, b"/api/v1/\xc3\x28health", tok)
    s.assert_error(resp, 404, "not_found", secrets=stack.secrets)


LOGS = s.LOGS
OPEN = s.OPEN
QUERIES = [
    # repeated: the first occurrence wins
    (LOGS + "?hours=2&hours=abc", 200, None),
    (LOGS + "?hours=abc&hours=2", 400, "bad_request"),
    (LOGS + "?" + "limit=1&" * 900 + "hours=3", 200, None),
    (LOGS + "?" + "x=1&" * 1500, 200, None),
    (LOGS + "?" + "&" * 6000, 200, None),
    (LOGS + "?&&&=&=&hours=2", 200, None),
    (LOGS + "?=1", 200, None),
    # overlong values: the worker says 400; past nginx's 8 KiB line it is nginx's 414
    (LOGS + "?hours=" + "1" * 6000, 400, "bad_request"),
    (LOGS + "?hours=" + "0" * 6000 + "1", 400, "bad_request"),
    (OPEN + "?symbol=" + "A" * 21, 400, "bad_request"),
    (OPEN + "?symbol=" + "A" * 7000, 400, "bad_request"),
    (LOGS + "?pad=" + "x" * 7000 + "&hours=2", 200, None),
    (LOGS + "?hours=" + "1" * 9000, 414, None),
    (LOGS + "?" + "a=b&" * 4000, 414, None),
    # empty, NUL, non-digits
    (LOGS + "?hours", 400, "bad_request"),
    (LOGS + "?hours=", 400, "bad_request"),
    (LOGS + "?hours=%00", 400, "bad_request"),
    (LOGS + "?hours=1%00", 400, "bad_request"),
    (LOGS + "?hours=%2B1", 400, "bad_request"),
    (LOGS + "?hours=1.0", 400, "bad_request"),
    (LOGS + "?hours=%EF%BC%91", 400, "bad_request"),        # fullwidth one
    (LOGS + "?limit=-0", 400, "bad_request"),
    (LOGS + "?limit=1e2", 400, "bad_request"),
    (LOGS + "?limit=0x10", 400, "bad_request"),
    (LOGS + "?hours=%zz", 400, "bad_request"),
    (LOGS + "?hours=%", 400, "bad_request"),
    (LOGS + "?hours=%ff", 400, "bad_request"),
    (OPEN + "?symbol=", 400, "bad_request"),
    (OPEN + "?symbol=%C3%A9", 400, "bad_request"),
    (OPEN + "?symbol=XAU%00USD", 400, "bad_request"),
    (OPEN + "?symbol=xauusd", 400, "bad_request"),
    (OPEN + "?symbol=A+B", 400, "bad_request"),
    (OPEN + "?symbol=%E2%80%AEDSUUAX", 400, "bad_request"),
    # SQL meta-characters in values and names
    (OPEN + "?symbol=XAUUSD%27%3B--", 400, "bad_request"),
    (OPEN + "?symbol=%27%20OR%201%3D1--", 400, "bad_request"),
    (OPEN + "?symbol=XAUUSD%22%29%3B%20DROP%20TABLE%20users%3B--", 400, "bad_request"),
    (OPEN + "?symbol=%25", 400, "bad_request"),
    (OPEN + "?symbol=_", 200, None),                        # a valid (unknown) symbol
    (OPEN + "?symbol=.", 200, None),
    (LOGS + "?hours=1)%20UNION%20SELECT%201--", 400, "bad_request"),
    (LOGS + "?limit=1;%20SELECT%20pg_sleep(10)", 400, "bad_request"),
    (LOGS + "?%27%3B%20DROP%20TABLE%20users%3B--=1", 200, None),
    (LOGS + "?hours[]=1", 200, None),                       # another name: ignored
    (LOGS + "?hours%00=1", 200, None),
]


@pytest.mark.parametrize("target,status,code", QUERIES, ids=[q[0][:70] for q in QUERIES])
def test_hostile_query(stack, tok, target, status, code):
    resp = raw_get(stack, target, tok)
    if status == 414:
        s.assert_error(resp, 414, None, secrets=stack.secrets)
    elif code is None:
        assert resp.status_code == status, (resp.status_code, resp.text[:300])
        body = resp.json()
        s.assert_json_response(resp)
        assert set(body) >= {"user_id"}
    else:
        body = s.assert_error(resp, status, code, secrets=stack.secrets)
        assert len(body["message"]) < 200, "the message does not echo the input"


def test_sql_in_symbol_does_not_touch_the_database(stack, tok, db):
    """After all of the above the tables are still there and intact."""
    for table in ("users", "reconciliation_logs", "equity_snapshots", "instruments"):
        assert db.execute(f"SELECT to_regclass('public.{table}') IS NOT NULL").fetchone()[0]


# --------------------------------------------------------------------------- bodies

MB = 1024 * 1024


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_one_megabyte_body_is_413(stack, tok, method):
    body = b"{" + b'"a":' * (MB // 4) + b"}"
    head = (f"{method} {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {tok}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}").encode()
    resp = s.raw_http(stack.base_url, head, body)
    s.assert_error(resp, 413, "payload_too_large", secrets=stack.secrets)


def test_one_megabyte_chunked_body_is_413(stack, tok):
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(16)) + b"0\r\n\r\n"
    head = (f"POST {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {tok}\r\n"
            f"Transfer-Encoding: chunked").encode()
    resp = s.raw_http(stack.base_url, head, body)
    s.assert_error(resp, 413, "payload_too_large", secrets=stack.secrets)


def test_small_body_on_get_is_ignored(stack, tok):
    """A body under the limit on a GET does not change the answer."""
    body = b'{"user_id":"00000000-0000-4000-8000-000000000001"}'
    head = (f"GET {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {tok}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}").encode()
    resp = s.raw_http(stack.base_url, head, body)
    assert resp.status_code == 200 and resp.json()["user_id"] != "00000000-0000-4000-8000-000000000001"


@pytest.mark.parametrize("framing", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked",
    b"Content-Length: 5\r\nContent-Length: 6",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: xchunked",
    b"Content-Length: -1",
    b"Content-Length: 1e3",
    b"Content-Length: 99999999999999999999999",
], ids=["cl+te", "two-cl", "two-te", "te-gzip", "te-xchunked", "cl-negative", "cl-exponent", "cl-huge"])
def test_smuggling_framing_is_refused(stack, tok, framing):
    """Ambiguous or unsupported body framing: a JSON 4xx from nginx, never passed on."""
    head = f"POST {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {tok}\r\n".encode() + framing
    resp = s.raw_http(stack.base_url, head, b"0\r\n\r\nGET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
                      timeout=15)
    s.assert_error(resp, (400, 405, 413), None, secrets=stack.secrets)


# --------------------------------------------------------------------------- headers


def test_two_hundred_headers_are_fine(stack, token, make_user):
    """200 small headers reach the worker as 200 FastCGI params; the answer is the view."""
    uid = make_user()
    extra = b"\r\n".join(b"X-Hostile-%03d: value-%03d" % (i, i) for i in range(200))
    resp = raw_get(stack, s.STATUS, token(uid), extra)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["user_id"] == uid


def test_two_hundred_large_headers_are_a_json_400(stack, tok):
    """200 headers of 200 bytes (40 KB) overflow nginx's header buffers: JSON 400."""
    extra = b"\r\n".join(b"X-Hostile-%03d: " % i + b"v" * 200 for i in range(200))
    resp = raw_get(stack, s.STATUS, tok, extra)
    s.assert_error(resp, 400, "bad_request", secrets=stack.secrets)


@pytest.mark.parametrize("header", [
    b"X-Request-Id: ../../etc/passwd\r\nX-Request-Id: %0d%0aSet-Cookie: a=b",
    b"Host: evil.example\r\nHost: other.example",
    b"X-Forwarded-For: 10.0.0.1, 127.0.0.1",
    b"Proxy: http://127.0.0.1:1",
    b"Content-Type: application/json; charset=\xff\xfe",
    b"X-Weird: \x01\x02\x03\x7f",
    b"X-Unicode: \xe2\x80\xae\xf0\x9f\x92\xa3",
    b"Accept: " + b"*/*, " * 1000,
    b"X-Folded: a\r\n folded continuation",
    b"Bad Header Name: x",
    b": empty-name",
], ids=["request-id-injection", "two-hosts", "xff", "httpoxy", "ct-bytes", "ctrl", "unicode",
        "accept-5k", "obs-fold", "space-in-name", "empty-name"])
def test_odd_headers_are_200_or_json_400(stack, token, make_user, header):
    uid = make_user()
    resp = raw_get(stack, s.STATUS, token(uid), header)
    if resp.status_code == 200:
        assert resp.json()["user_id"] == uid
        assert s.REQUEST_ID_RE.match(resp.headers["X-Request-Id"])
        assert "Set-Cookie" not in resp.headers
    else:
        s.assert_error(resp, 400, "bad_request", secrets=stack.secrets)


@pytest.mark.parametrize("line", [
    b"GET /api/v1/health HTTP/1.1 extra",
    b"GET /api/v1/health HTTP/9.9",
    b"GET /api/v1/health HTTP/1.1\x00",
    b"G\x00T /api/v1/health HTTP/1.1",
    b"GET\t/api/v1/health\tHTTP/1.1",
    b"PRI * HTTP/2.0\r\n\r\nSM",
    b"GET api/v1/health HTTP/1.1",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
], ids=["extra-token", "http-9.9", "nul", "nul-method", "tabs", "h2-preface", "no-slash", "tls-hello"])
def test_malformed_request_line_is_json_400(stack, line):
    resp = s.raw_http(stack.base_url, line)
    s.assert_error(resp, (400, 505), None, secrets=stack.secrets)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO", "get", "OPTIONS"])
def test_unusual_methods_are_405_or_400_json(stack, tok, method):
    resp = s.raw_http(stack.base_url, f"{method} {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {tok}".encode())
    body = s.assert_error(resp, (400, 405), None, secrets=stack.secrets)
    if resp.status_code == 405:
        assert body["error"] == "method_not_allowed"
        assert "GET" in resp.headers.get("Allow", "")
