"""Authentication (API.md "Authentication" and "Fine points").

Every endpoint but the health check needs `Authorization: Bearer <JWT>`: HS256 only, signed
with JWT_SECRET_KEY; `sub` is the user's UUID; `exp` is required; `nbf`/`iat` in the future
are refused (30 s leeway). Any other `alg` (`none` included), a bad signature, a malformed
token or a missing header is 401 with `WWW-Authenticate: Bearer`.
"""
import time

import pytest

import support as s

AUTH_PATHS = [s.STATUS, s.LOGS, s.OPEN, s.position_path(1), s.GUARDS]


def assert_unauthorized(resp, stack):
    """401, `WWW-Authenticate: Bearer`, and the JSON error body with code `unauthorized`."""
    s.assert_error(resp, 401, "unauthorized", secrets=stack.secrets)
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.split(" ")[0].split(",")[0].lower() == "bearer", \
        f"WWW-Authenticate must be the Bearer scheme, got {challenge!r}"
    assert resp.headers.get("X-Cache") != "HIT", "a 401 must not come from the cache"


@pytest.mark.smoke
@pytest.mark.parametrize("path", AUTH_PATHS)
def test_missing_header_is_401(get, stack, path):
    """A missing header is 401 with `WWW-Authenticate: Bearer`."""
    assert_unauthorized(get(path), stack)


@pytest.mark.smoke
@pytest.mark.parametrize("path", AUTH_PATHS)
def test_valid_token_is_accepted_on_every_endpoint(get, token, make_user, path):
    """A valid HS256 token for an existing user opens every endpoint (ticket 1 is not theirs: 404)."""
    uid = make_user()
    resp = get(path, token(uid))
    if path == s.position_path(1):
        s.assert_error(resp, 404, "not_found")
    else:
        assert s.ok(resp)["user_id"] == uid


def now():
    return int(time.time())


# Each case builds an Authorization header value from (jwt, user_id, secret).
BAD = {
    "empty header": lambda jwt, uid, key: "",
    "scheme only": lambda jwt, uid, key: "Bearer",
    "scheme and space": lambda jwt, uid, key: "Bearer ",
    "basic scheme": lambda jwt, uid, key: "Basic dXNlcjpwYXNz",
    "token without scheme": lambda jwt, uid, key: jwt(s.claims(uid)),
    "other scheme with valid token": lambda jwt, uid, key: "Token " + jwt(s.claims(uid)),
    "malformed: one part": lambda jwt, uid, key: "Bearer abc",
    "malformed: two parts": lambda jwt, uid, key: "Bearer " + ".".join(jwt(s.claims(uid)).split(".")[:2]),
    "malformed: four parts": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid)) + ".e30",
    "malformed: garbage base64": lambda jwt, uid, key: "Bearer !!!.@@@.###",
    "malformed: header not json": lambda jwt, uid, key: _with_header_bytes(b"not json", uid, key),
    "malformed: payload not json": lambda jwt, uid, key: _with_payload_bytes(b"[1,2", key),
    "malformed: payload a json array": lambda jwt, uid, key: _with_payload_bytes(b"[]", key),
    "alg none, no signature": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "none", "typ": "JWT"}, sign_alg=None),
    "alg none, HS256 signature": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "none", "typ": "JWT"}),
    "alg None (capitalised)": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "None", "typ": "JWT"}, sign_alg=None),
    "alg HS512, correctly signed": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "HS512", "typ": "JWT"}, sign_alg="HS512"),
    "alg HS384, correctly signed": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "HS384", "typ": "JWT"}, sign_alg="HS384"),
    "alg RS256 header, HMAC signature (key confusion)": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "RS256", "typ": "JWT"}),
    "alg lowercase hs256": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), header={"alg": "hs256", "typ": "JWT"}),
    "alg missing": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid), header={"typ": "JWT"}),
    "signed with another key": lambda jwt, uid, key:
        "Bearer " + jwt(s.claims(uid), key=b"another-secret-that-is-32-bytes-long!!"),
    "empty signature": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid), sign_alg=None),
    "signature tampered": lambda jwt, uid, key: "Bearer " + _flip_last_char(jwt(s.claims(uid))),
    "payload swapped after signing": lambda jwt, uid, key: "Bearer " + _swap_payload(jwt, uid),
    "expired": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid, iat=now() - 7200, exp=now() - 120)),
    "exp missing": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid, exp=s.OMIT)),
    "exp not a number": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid, exp=str(now() + 3600))),
    "nbf 2 minutes ahead": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid, nbf=now() + 120)),
    "iat 2 minutes ahead": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid, iat=now() + 120)),
    "sub missing": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid, sub=s.OMIT)),
    "sub not a uuid": lambda jwt, uid, key: "Bearer " + jwt(s.claims("alice")),
    "sub a number": lambda jwt, uid, key: "Bearer " + jwt(s.claims(12345)),
    "sub a truncated uuid": lambda jwt, uid, key: "Bearer " + jwt(s.claims(uid[:-1])),
    "sub empty": lambda jwt, uid, key: "Bearer " + jwt(s.claims("")),
}


def _flip_last_char(tok):
    head, sig = tok[:-2], tok[-2:]
    return head + ("AA" if sig != "AA" else "BB")


def _swap_payload(jwt, uid):
    """A token signed for another user with this user's payload pasted in."""
    other = jwt(s.claims(s.new_uuid()))
    mine = jwt(s.claims(uid))
    h, _, sig = other.split(".")
    return f"{h}.{mine.split('.')[1]}.{sig}"


def _with_header_bytes(header: bytes, uid, key):
    signing_input = f"{s.b64url(header)}.{s.b64json(s.claims(uid))}"
    return f"Bearer {signing_input}.{s.sign(signing_input, key)}"


def _with_payload_bytes(payload: bytes, key):
    signing_input = f"{s.b64json({'alg': 'HS256', 'typ': 'JWT'})}.{s.b64url(payload)}"
    return f"Bearer {signing_input}.{s.sign(signing_input, key)}"


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_credentials_are_401(get, jwt, make_user, stack, case):
    """Any other alg (none included), a bad signature, a malformed token, a missing or
    expired exp, nbf/iat beyond the 30 s leeway, a sub that is not a UUID: 401."""
    uid = make_user()
    header = BAD[case](jwt, uid, stack.secret)
    resp = get(s.STATUS, headers={"Authorization": header})
    assert_unauthorized(resp, stack)
    credential = header.split(" ", 1)[-1]
    if len(credential) > 12:
        assert credential not in resp.text, "the 401 body echoes the credential"


@pytest.mark.smoke
def test_bad_token_does_not_leak_into_a_cached_view(get, jwt, token, make_user, rows, stack):
    """A user's cached view is never served to a request that fails auth for that user."""
    uid = make_user()
    rows.sync(uid, 1)
    assert s.ok(get(s.STATUS, token(uid)))["total_syncs"] == 1  # now cached
    forged = jwt(s.claims(uid), key=b"x" * 40)
    assert_unauthorized(get(s.STATUS, forged), stack)
    expired = jwt(s.claims(uid, exp=now() - 120))
    assert_unauthorized(get(s.STATUS, expired), stack)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive(get, token, make_user, scheme):
    """The `Bearer` scheme is matched case-insensitively."""
    uid = make_user()
    resp = get(s.STATUS, headers={"Authorization": f"{scheme} {token(uid)}"})
    assert s.ok(resp)["user_id"] == uid


def test_nbf_and_iat_within_leeway_are_accepted(get, token, make_user):
    """`nbf`/`iat` in the future are refused with a 30 s leeway: 10 s ahead is fine."""
    uid = make_user()
    assert s.ok(get(s.STATUS, token(uid, nbf=now() + 10)))["user_id"] == uid
    assert s.ok(get(s.STATUS, token(uid, iat=now() + 10)))["user_id"] == uid


def test_nbf_and_iat_in_the_past_are_accepted(get, token, make_user):
    uid = make_user()
    assert s.ok(get(s.STATUS, token(uid, nbf=now() - 600, iat=now() - 600)))["user_id"] == uid


def test_iat_and_nbf_are_optional(get, token, make_user):
    """Only `exp` is required."""
    uid = make_user()
    assert s.ok(get(s.STATUS, token(uid, iat=s.OMIT)))["user_id"] == uid


def test_typ_header_is_optional(get, jwt, make_user):
    """HS256 is decided by `alg`; a header without `typ` is a valid JWS."""
    uid = make_user()
    tok = jwt(s.claims(uid), header={"alg": "HS256"})
    assert s.ok(get(s.STATUS, tok))["user_id"] == uid


def test_fractional_exp_is_a_numeric_date(get, jwt, make_user):
    """RFC 7519 NumericDate may be non-integer."""
    uid = make_user()
    tok = jwt(s.claims(uid, exp=now() + 3600.5))
    assert s.ok(get(s.STATUS, tok))["user_id"] == uid


def test_uppercase_sub_is_the_same_user_shown_lowercase(get, token, make_user, rows):
    """`sub` is the user's UUID (UUID text is case-insensitive); UUIDs are printed lowercase."""
    uid = make_user()
    rows.sync(uid, 7)
    body = s.ok(get(s.STATUS, token(uid.upper())))
    assert body["user_id"] == uid
    assert body["total_syncs"] == 1


def test_unknown_user_gets_empty_views(get, token):
    """A valid token whose `sub` has no `users` row gets empty views, not an error."""
    uid = s.new_uuid()
    tok = token(uid)
    status = s.ok(get(s.STATUS, tok))
    assert status["user_id"] == uid
    assert status["status"] == "idle" and status["total_syncs"] == 0
    assert status["recent_events"] == []
    logs = s.ok(get(s.LOGS, tok))
    assert logs == {"user_id": uid, "hours": 1, "events": [], "next_cursor": None}
    positions = s.ok(get(s.OPEN, tok))
    assert positions["positions"] == [] and positions["total_positions"] == 0
    guards = s.ok(get(s.GUARDS, tok))
    assert guards["market_guard_alerts"] == [] and guards["system_status"] == "healthy"
    s.assert_error(get(s.position_path(1), tok), 404, "not_found")


def test_routing_comes_before_auth(get, request_):
    """Routing comes before auth: an unknown path is 404 and a wrong method 405, token or not."""
    s.assert_error(get("/api/v1/nope"), 404, "not_found")
    s.assert_error(get("/api/v1/reconciliation/nope"), 404, "not_found")
    resp = request_("POST", s.STATUS)
    s.assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers.get("Allow", "")
    resp = request_("DELETE", s.position_path(5), headers={"Authorization": "Bearer junk"})
    s.assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers.get("Allow", "")
