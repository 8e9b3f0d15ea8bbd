"""GET /api/v1/health — no auth; {"status":"ok","database":"ok","cache":"ok"}."""
import pytest
import support as s


@pytest.mark.smoke
def test_health_is_ok_without_a_token(get):
    """`GET /api/v1/health` | no auth. `{"status":"ok","database":"ok","cache":"ok"}`"""
    resp = get(s.HEALTH)
    assert s.ok(resp) == {"status": "ok", "database": "ok", "cache": "ok"}


def test_health_ignores_a_bad_token(get):
    """Every endpoint *but the health check* needs a token: a bad one does not turn it into 401."""
    resp = get(s.HEALTH, headers={"Authorization": "Bearer not.a.token"})
    assert s.ok(resp)["status"] == "ok"


def test_health_ignores_unknown_parameters(get):
    """Unknown parameters are ignored."""
    assert s.ok(get(s.HEALTH, params={"verbose": "1"}))["status"] == "ok"


@pytest.mark.smoke
def test_every_response_has_its_own_request_id(get):
    """Every response carries `X-Request-Id` (nginx's `$request_id`): one per request."""
    ids = {get(s.HEALTH).headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(s.REQUEST_ID_RE.match(i) for i in ids)


def test_health_wrong_method_is_405(request_):
    """Routing: a wrong method is 405 with `Allow`."""
    resp = request_("POST", s.HEALTH, data=b"{}")
    s.assert_error(resp, 405, "method_not_allowed")
    assert "GET" in [m.strip() for m in resp.headers.get("Allow", "").split(",")]
