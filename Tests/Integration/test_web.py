"""What nginx serves browsers: the dashboard's files at / (web/) with a strict CSP and the other
security headers, and CORS for the API — only for origins on the allow-list (CORS_ORIGINS,
nginx/cors.conf), preflights answered by nginx, Vary: Origin (docs/design/dashboard.md)."""
from __future__ import annotations

import time

import pytest
import requests

import support as s
from sse import open_stream

WEB = s.REPO_ROOT / "web"
UNLISTED = "https://evil.example"
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers", "Access-Control-Expose-Headers",
                "Access-Control-Allow-Credentials", "Access-Control-Max-Age")


@pytest.fixture(scope="module")
def listed(stack) -> str:
    """The first origin of the test stack's allow-list (scripts/test.sh sets CORS_ORIGINS)."""
    origins = stack.env.get("CORS_ORIGINS", "").split()
    assert origins, "the test stack has no CORS_ORIGINS (scripts/test.sh sets them)"
    return origins[0]


def no_cors(resp):
    present = [h for h in CORS_HEADERS if h in resp.headers]
    assert not present, f"CORS headers for an unlisted origin: {present}"


# --------------------------------------------------------------------------- the dashboard's files

@pytest.mark.smoke
@pytest.mark.parametrize("path,file,ctype", [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/app.css", "app.css", "text/css; charset=utf-8"),
    ("/js/main.js", "js/main.js", "text/javascript; charset=utf-8"),
    ("/js/views/positions.js", "js/views/positions.js", "text/javascript; charset=utf-8"),
    ("/favicon.svg", "favicon.svg", "image/svg+xml"),
])
def test_the_dashboard_is_served_from_web(stack, path, file, ctype):
    resp = requests.get(stack.base_url + path, timeout=10)
    assert resp.status_code == 200, resp.text[:200]
    assert resp.content == (WEB / file).read_bytes()
    assert resp.headers["Content-Type"] == ctype
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers.get("ETag")


@pytest.mark.smoke
def test_the_page_carries_a_strict_csp_and_security_headers(stack):
    resp = requests.get(stack.base_url + "/", timeout=10)
    csp = {d.split()[0]: d.split()[1:] for d in resp.headers["Content-Security-Policy"].split("; ")}
    assert csp["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "img-src", "connect-src"):
        assert csp[directive] == ["'self'"], (directive, csp[directive])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'none'"]
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers.get("X-Request-Id")


def test_the_page_loads_nothing_from_other_hosts_and_has_no_inline_script_or_style():
    for f in WEB.rglob("*"):
        if f.suffix not in (".html", ".js", ".css"):
            continue
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f
        if f.suffix == ".html":
            assert "<script>" not in text and "<style" not in text and " style=" not in text, f
            assert " on" + "click=" not in text and "javascript:" not in text, f


def test_files_that_do_not_exist_are_json_404s(stack):
    for path in ("/nope.html", "/js/", "/js", "/../etc/passwd", "/web/index.html", "/.git/config"):
        resp = requests.get(stack.base_url + path, timeout=10)
        s.assert_error(resp, (400, 404), None)


def test_the_page_takes_only_get_and_head(stack):
    assert requests.head(stack.base_url + "/", timeout=10).status_code == 200
    resp = requests.post(stack.base_url + "/", data="x", timeout=10)
    s.assert_error(resp, 405, "method_not_allowed")


# --------------------------------------------------------------------------- CORS

def preflight(stack, origin, path="/api/v1/positions/open", method="GET"):
    return requests.options(stack.base_url + path, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, if-none-match"})


@pytest.mark.parametrize("path", ["/api/v1/positions/open", "/api/v1/stream", "/api/v1/session",
                                  "/api/v1/reconciliation/events"])
def test_a_preflight_from_a_listed_origin_is_answered_by_nginx(stack, listed, path):
    resp = preflight(stack, listed, path)
    assert resp.status_code == 204, resp.text[:200]
    h = resp.headers
    assert h["Access-Control-Allow-Origin"] == listed
    assert set(h["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "DELETE"}
    allowed = {x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "if-none-match", "last-event-id", "content-type"} <= allowed
    assert int(h["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in h
    assert "Origin" in h["Vary"]
    assert h.get("X-Request-Id")


def test_the_operations_pages_have_no_cors(stack, listed):
    # /metrics and /status stay behind OPS_ALLOW for every method: no preflight, no CORS headers.
    for path in ("/metrics", "/status"):
        resp = preflight(stack, listed, path)
        assert resp.status_code != 204, path
        no_cors(resp)
        resp = requests.get(stack.base_url + path, headers={"Origin": listed}, timeout=10)
        assert resp.status_code == 200, path
        no_cors(resp)


def test_a_preflight_from_an_unlisted_origin_gets_nothing(stack):
    resp = preflight(stack, UNLISTED)
    assert resp.status_code == 405  # the worker's answer to OPTIONS: no preflight at all
    no_cors(resp)


def test_a_listed_origin_can_read_views_and_their_tags(stack, listed, token, make_user, rows):
    user = make_user()
    rows.sync(user, s.unique_ticket())
    resp = requests.get(stack.base_url + "/api/v1/positions/open", timeout=10,
                        headers={**s.bearer(token(user)), "Origin": listed})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == listed
    exposed = {x.strip() for x in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "X-Cache", "X-Request-Id", "Retry-After"} <= exposed
    assert "Origin" in resp.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in resp.headers
    # A revalidation (304) keeps them: the page reads the answer the same way.
    again = requests.get(stack.base_url + "/api/v1/positions/open", timeout=10, headers={
        **s.bearer(token(user)), "Origin": listed, "If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["Access-Control-Allow-Origin"] == listed


def test_an_unlisted_origin_gets_no_cors_headers_on_any_answer(stack, token, make_user):
    user = make_user()
    for headers in ({**s.bearer(token(user))}, {}):
        resp = requests.get(stack.base_url + "/api/v1/guards/status", timeout=10,
                            headers={**headers, "Origin": UNLISTED})
        assert resp.status_code in (200, 401)
        no_cors(resp)
        assert "Origin" in resp.headers["Vary"]


def test_errors_carry_cors_for_a_listed_origin_so_its_page_can_read_them(stack, listed):
    # The worker's 401 and nginx's own JSON 404: a page on the listed origin sees why.
    for path, status in (("/api/v1/guards/status", 401), ("/api/v1/nope", 404)):
        resp = requests.get(stack.base_url + path, headers={"Origin": listed}, timeout=10)
        assert resp.status_code == status
        assert resp.headers["Access-Control-Allow-Origin"] == listed
    resp = requests.get(stack.base_url + "/definitely-not-here", headers={"Origin": listed}, timeout=10)
    s.assert_error(resp, 404, "not_found")


def test_the_stream_allows_a_listed_origin_without_credentials(stack, listed, token, make_user):
    user = make_user()
    stream = open_stream(stack.base_url, "/api/v1/stream",
                         headers={**s.bearer(token(user)), "Origin": listed})
    try:
        assert stream.status == 200
        assert stream.headers.get("access-control-allow-origin") == listed
        assert "access-control-allow-credentials" not in stream.headers
    finally:
        stream.close()


def test_the_stream_refuses_an_unlisted_origin(stack, token, make_user):
    # nchan answers 403 with an empty body (it echoes the Origin on that refusal; nothing of
    # the stream is sent).
    user = make_user()
    stream = open_stream(stack.base_url, "/api/v1/stream",
                         headers={**s.bearer(token(user)), "Origin": UNLISTED})
    try:
        assert stream.status == 403
        assert stream.next_event(timeout=0.5) is None
    finally:
        stream.close()
