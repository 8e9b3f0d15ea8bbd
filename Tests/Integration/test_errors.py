"""Errors: every error is JSON {"error","message","request_id"} with the right code;
request_id equals X-Request-Id; nginx's own 4xx/5xx are JSON too; error bodies never carry
stack traces, SQL or secrets.
"""
import pytest

import support as s

ROUTES = [s.HEALTH, s.STATUS, s.LOGS, s.OPEN, s.position_path(1), s.GUARDS]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/positions", "/api/v2/health",
                                  "/api/v1/reconciliation/status/extra", "/api/v1/guards",
                                  "/api/v1/positions/1/history", "/api/", "/api/v1/HEALTH"])
@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "token"])
def test_unknown_api_path_is_404(get, token, stack, path, with_token):
    """An unknown path is 404 `not_found`, token or not (routing comes before auth)."""
    tok = token(s.new_uuid()) if with_token else None
    s.assert_error(get(path, tok), 404, "not_found", secrets=stack.secrets)


@pytest.mark.parametrize("path", ["/favicon.ico", "/health", "/v1/health", "/robots.txt",
                                  "/index.htm", "/api"])
def test_nginx_404_outside_api_is_json(get, stack, path):
    """nginx's own 404 (outside /api/ and the dashboard's files, test_web.py) is JSON with a
    request id."""
    s.assert_error(get(path), 404, "not_found", secrets=stack.secrets)


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_allow(request_, stack, path, method):
    """A wrong method is 405 `method_not_allowed` with `Allow`, even without a token."""
    resp = request_(method, path, data=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                    headers={"Content-Type": "application/json"})
    s.assert_error(resp, 405, "method_not_allowed", secrets=stack.secrets)
    allowed = [m.strip().upper() for m in resp.headers.get("Allow", "").split(",")]
    assert "GET" in allowed and method not in allowed, resp.headers.get("Allow")


def test_wrong_method_with_a_valid_token_is_still_405(request_, token, make_user):
    uid = make_user()
    resp = request_("POST", s.OPEN, token(uid))
    s.assert_error(resp, 405, "method_not_allowed")


def test_400_401_404_bodies(get, token, make_user, stack):
    """Each code with its HTTP status; request_id is the X-Request-Id of that response."""
    uid = make_user()
    tok = token(uid)
    ids = set()
    for resp, status, code in [
        (get(s.LOGS, tok, params={"hours": "x"}), 400, "bad_request"),
        (get(s.position_path("abc"), tok), 400, "bad_request"),
        (get(s.STATUS), 401, "unauthorized"),
        (get(s.position_path(123), tok), 404, "not_found"),
        (get("/nowhere"), 404, "not_found"),
    ]:
        body = s.assert_error(resp, status, code, secrets=stack.secrets)
        ids.add(body["request_id"])
    assert len(ids) == 5


def test_payload_too_large_is_413_json(stack):
    """A 2 MB body is refused by nginx with 413 `payload_too_large` JSON."""
    body = b"x" * (2 * 1024 * 1024)
    head = (f"POST {s.STATUS} HTTP/1.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}").encode()
    resp = s.raw_http(stack.base_url, head, body)
    s.assert_error(resp, 413, "payload_too_large", secrets=stack.secrets)


def test_overlong_uri_is_414_json(stack):
    """nginx's 414 (request line longer than its buffers) is JSON."""
    head = f"GET {s.HEALTH}?pad={'a' * 20000} HTTP/1.1".encode()
    resp = s.raw_http(stack.base_url, head)
    s.assert_error(resp, 414, None, secrets=stack.secrets)


def test_overlong_header_is_400_or_494_json(stack):
    """A 20 KB header: nginx's 494 (sent as 400 unless mapped) is JSON."""
    head = f"GET {s.HEALTH} HTTP/1.1\r\nX-Big: {'b' * 20000}".encode()
    resp = s.raw_http(stack.base_url, head)
    body = s.assert_error(resp, (400, 494), None, secrets=stack.secrets)
    if resp.status_code == 400:
        assert body["error"] == "bad_request"


def test_overlong_authorization_header_is_json(stack):
    """The same for a huge Authorization header (a token is no way past the size limits)."""
    head = f"GET {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {'c' * 20000}".encode()
    resp = s.raw_http(stack.base_url, head)
    s.assert_error(resp, (400, 401, 494), None, secrets=stack.secrets)


def test_nginx_400_is_json(stack):
    """nginx's own 400 (an HTTP/1.1 request without Host) is JSON `bad_request`."""
    resp = s.raw_http(stack.base_url, f"GET {s.HEALTH} HTTP/1.1".encode(), add_host=False)
    s.assert_error(resp, 400, "bad_request", secrets=stack.secrets)


@pytest.mark.parametrize("path,params", [
    (s.OPEN, {"symbol": "X' OR '1'='1"}),
    (s.OPEN, {"symbol": "XAUUSD;DROP TABLE users"}),
    (s.LOGS, {"hours": "1;SELECT 1"}),
    (s.LOGS, {"limit": "1 OR 1=1"}),
    (s.LOGS, {"hours": "9" * 400}),
    (s.position_path("1;DROP"), None),
    (s.position_path("1%27"), None),
    (s.position_path("%00"), None),
    (s.OPEN, {"symbol": "\x00"}),
    (s.OPEN, {"symbol": "\u202eXAU"}),
], ids=repr)
def test_hostile_input_is_a_clean_400(get, token, stack, path, params):
    """Hostile input is a plain 400 — never a 500, never SQL or a trace in the body."""
    s.assert_error(get(path, token(s.new_uuid()), params=params), 400, "bad_request",
                   secrets=stack.secrets)


def test_broken_percent_encoding_is_400(get, token, stack):
    """A query that cannot be decoded is a bad request, not a crash."""
    resp = get(s.LOGS + "?hours=%zz", token(s.new_uuid()))
    s.assert_error(resp, 400, "bad_request", secrets=stack.secrets)


def test_successful_responses_are_json_with_request_id(get, token, make_user, rows):
    """All bodies are JSON (`application/json; charset=utf-8`); every response has X-Request-Id."""
    uid = make_user()
    rows.sync(uid, 1, age=10)
    tok = token(uid)
    for path in ROUTES:
        s.ok(get(path, tok))


def test_client_supplied_request_id_is_not_used(get, token, stack):
    """X-Request-Id is nginx's $request_id: a client's own X-Request-Id neither replaces it
    nor reaches the error body."""
    forged = "client-chosen-id-0123456789"
    for resp in (get(s.STATUS, headers={"X-Request-Id": forged}),
                 get(s.LOGS, token(s.new_uuid()), params={"hours": "0"},
                     headers={"X-Request-Id": forged})):
        body = s.assert_error(resp, (400, 401), None, secrets=stack.secrets)
        assert resp.headers["X-Request-Id"] != forged
        assert body["request_id"] == resp.headers["X-Request-Id"]
    ok = get(s.HEALTH, headers={"X-Request-Id": forged})
    s.ok(ok)
    assert ok.headers["X-Request-Id"] != forged
