"""Hostile tokens: every one is a 401 `unauthorized` JSON with `WWW-Authenticate: Bearer`
(API.md "Authentication"), never a 500, a 502 (a crashed worker) or a hang; a valid token
replayed with another user's path parameters or query is the caller's own view or a 404.

test_auth.py covers the ordinary refusals; these are the adversarial ones: other algorithms
with plausible signatures, key-confusion and header-injection tricks, truncation, sizes at
and beyond the limits, bytes that are not UTF-8, claims of every wrong JSON type, parser
bombs in the header (which is parsed before the signature is checked).
"""
import base64
import json
import os
import time

import pytest

import support as s


def now() -> int:
    return int(time.time())


def assert_401(resp, stack, credential: str | bytes | None = None):
    s.assert_error(resp, 401, "unauthorized", secrets=stack.secrets)
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), challenge
    if isinstance(credential, str) and len(credential) > 12:
        assert credential not in resp.text, "the 401 body echoes the credential"


def signed(header_bytes: bytes, payload_bytes: bytes, key: bytes, alg="HS256") -> str:
    signing_input = f"{s.b64url(header_bytes)}.{s.b64url(payload_bytes)}"
    return f"{signing_input}.{s.sign(signing_input, key, alg)}"


def hs256(header: dict, payload: dict, key: bytes) -> str:
    return s.make_jwt(payload, key, header=header)


HDR = {"alg": "HS256", "typ": "JWT"}


def raw_header(header_json: bytes, uid: str) -> str:
    """A token whose header is `header_json` verbatim, with a junk signature."""
    return f"{s.b64url(header_json)}.{s.b64json(s.claims(uid))}.c2ln"


def standard_base64_signature(tok: str) -> str:
    head, sig = tok.rsplit(".", 1)
    return head + "." + base64.b64encode(base64.urlsafe_b64decode(sig + "==")).decode()


# Each case: (stack secret, user id) -> token text (after "Bearer ").
CASES = {
    # -- algorithms
    "alg none, empty signature": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "none"}, sign_alg=None),
    "alg NONE, empty signature": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "NONE", "typ": "JWT"}, sign_alg=None),
    "alg none, no signature part": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "none"}, sign_alg=None)[:-1],
    "alg HS512, signed with the secret": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "HS512", "typ": "JWT"}, sign_alg="HS512"),
    "alg HS384, signed with the secret": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "HS384", "typ": "JWT"}, sign_alg="HS384"),
    "alg RS256, 256-byte signature": lambda k, u: f"{s.b64json({'alg': 'RS256', 'typ': 'JWT'})}.{s.b64json(s.claims(u))}.{s.b64url(os.urandom(256))}",
    "alg RS256, HMAC with the secret (key confusion)": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "RS256", "typ": "JWT"}),
    "alg ES256, 64-byte signature": lambda k, u: f"{s.b64json({'alg': 'ES256'})}.{s.b64json(s.claims(u))}.{s.b64url(os.urandom(64))}",
    "alg PS256": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "PS256"}),
    "alg EdDSA": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "EdDSA"}),
    "alg 'HS256 ' (trailing space)": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "HS256 "}),
    "alg 'HS256\\u0000'": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": "HS256\u0000"}),
    "alg an array": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": ["HS256"]}),
    "alg null": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": None}),
    "alg a number": lambda k, u: s.make_jwt(s.claims(u), k, header={"alg": 256}),
    "header an array": lambda k, u: signed(b'["HS256"]', json.dumps(s.claims(u)).encode(), k),
    "header a string": lambda k, u: signed(b'"HS256"', json.dumps(s.claims(u)).encode(), k),
    "header empty object": lambda k, u: signed(b"{}", json.dumps(s.claims(u)).encode(), k),
    "header empty": lambda k, u: "." + s.b64json(s.claims(u)) + ".sig",
    # -- key tricks: the header names another key; the signature is not the secret's
    "kid path traversal, other key": lambda k, u: s.make_jwt(s.claims(u), b"", header={**HDR, "kid": "../../../../dev/null"}),
    "jku pointing elsewhere, other key": lambda k, u: s.make_jwt(s.claims(u), b"attacker-key-attacker-key-attack", header={**HDR, "jku": "http://127.0.0.1:1/jwks.json"}),
    "jwk embedded, signed with it": lambda k, u: s.make_jwt(s.claims(u), b"embedded-key-embedded-key-embedd", header={**HDR, "jwk": {"kty": "oct", "k": s.b64url(b"embedded-key-embedded-key-embedd")}}),
    "empty key": lambda k, u: s.make_jwt(s.claims(u), b""),
    "the secret's first 31 bytes": lambda k, u: s.make_jwt(s.claims(u), k[:31]),
    "the secret with a byte appended": lambda k, u: s.make_jwt(s.claims(u), k + b"x"),
    # -- truncation and framing
    "truncated by one character": lambda k, u: s.make_jwt(s.claims(u), k)[:-1],
    "truncated by ten characters": lambda k, u: s.make_jwt(s.claims(u), k)[:-10],
    "truncated to the signing input": lambda k, u: s.make_jwt(s.claims(u), k).rsplit(".", 1)[0],
    "truncated to the signing input and a dot": lambda k, u: s.make_jwt(s.claims(u), k).rsplit(".", 1)[0] + ".",
    "cut in the middle of the payload": lambda k, u: (lambda t: t[: t.index(".") + 10])(s.make_jwt(s.claims(u), k)),
    "signature with one extra character": lambda k, u: s.make_jwt(s.claims(u), k) + "A",
    "signature base64 padded": lambda k, u: s.make_jwt(s.claims(u), k) + "=",
    "signature in standard base64 (+/=)": lambda k, u: standard_base64_signature(s.make_jwt(s.claims(u), k)),
    "payload padded with =": lambda k, u: (lambda p: f"{p[0]}.{p[1]}==.{p[2]}")(s.make_jwt(s.claims(u), k).split(".")),
    "dots only": lambda k, u: "..",
    "five parts (JWE shape)": lambda k, u: s.make_jwt(s.claims(u), k) + ".AAAA.BBBB",
    "whitespace inside": lambda k, u: (lambda t: t[:10] + "\t" + t[10:])(s.make_jwt(s.claims(u), k)),
    "percent-encoded dots": lambda k, u: s.make_jwt(s.claims(u), k).replace(".", "%2E"),
    # -- sizes (nginx passes up to its 8 KiB header buffers; the worker refuses > 4096 bytes)
    "4097 characters of base64url": lambda k, u: "a" * 4097,
    "8000 characters, three parts": lambda k, u: "a" * 2666 + "." + "b" * 2666 + "." + "c" * 2666,
    "valid signature but 5000 bytes long": lambda k, u: s.make_jwt(s.claims(u, pad="x" * 3600), k),
    # -- claims of the wrong JSON type (correctly signed: as if the secret had leaked to a fool)
    "sub an array": lambda k, u: s.make_jwt(s.claims([u]), k),
    "sub an object": lambda k, u: s.make_jwt(s.claims({"id": u}), k),
    "sub null": lambda k, u: s.make_jwt(s.claims(None), k),
    "sub true": lambda k, u: s.make_jwt(s.claims(True), k),
    "sub a uuid with braces": lambda k, u: s.make_jwt(s.claims("{" + u + "}"), k),
    "sub a uuid without dashes": lambda k, u: s.make_jwt(s.claims(u.replace("-", "")), k),
    "sub a uuid with a NUL after it": lambda k, u: s.make_jwt(s.claims(u + "\u0000"), k),
    "sub SQL": lambda k, u: s.make_jwt(s.claims("' OR '1'='1"), k),
    "exp a string": lambda k, u: s.make_jwt(s.claims(u, exp="9999999999"), k),
    "exp null": lambda k, u: s.make_jwt(s.claims(u, exp=None), k),
    "exp true": lambda k, u: s.make_jwt(s.claims(u, exp=True), k),
    "exp an array": lambda k, u: s.make_jwt(s.claims(u, exp=[now() + 3600]), k),
    "exp an object": lambda k, u: s.make_jwt(s.claims(u, exp={"$gt": 0}), k),
    "exp negative": lambda k, u: s.make_jwt(s.claims(u, exp=-1), k),
    "exp 0": lambda k, u: s.make_jwt(s.claims(u, exp=0), k),
    "nbf a string": lambda k, u: s.make_jwt(s.claims(u, nbf="0"), k),
    "iat an array": lambda k, u: s.make_jwt(s.claims(u, iat=[0]), k),
    "nbf far in the future": lambda k, u: s.make_jwt(s.claims(u, nbf=2**53), k),
    "payload a JSON string": lambda k, u: signed(json.dumps(HDR).encode(), b'"' + u.encode() + b'"', k),
    "payload a JSON number": lambda k, u: signed(json.dumps(HDR).encode(), b"12345", k),
    "payload null": lambda k, u: signed(json.dumps(HDR).encode(), b"null", k),
    "payload JSON with a trailing comma": lambda k, u: signed(json.dumps(HDR).encode(), f'{{"sub":"{u}","exp":{now() + 3600},}}'.encode(), k),
    "payload with a comment": lambda k, u: signed(json.dumps(HDR).encode(), f'{{"sub":"{u}",/*x*/"exp":{now() + 3600}}}'.encode(), k),
    "payload NaN exp": lambda k, u: signed(json.dumps(HDR).encode(), f'{{"sub":"{u}","exp":NaN}}'.encode(), k),
    "payload -Infinity exp": lambda k, u: signed(json.dumps(HDR).encode(), f'{{"sub":"{u}","exp":-Infinity}}'.encode(), k),
    "payload exp 1e400 with nbf in the future": lambda k, u: signed(json.dumps(HDR).encode(), f'{{"sub":"{u}","exp":1e400,"nbf":{now() + 999}}}'.encode(), k),
    # -- bytes that are not UTF-8
    "payload invalid UTF-8 in sub": lambda k, u: signed(json.dumps(HDR).encode(), b'{"sub":"\xff\xfe' + u.encode()[2:] + b'","exp":' + str(now() + 3600).encode() + b"}", k),
    "payload UTF-16": lambda k, u: signed(json.dumps(HDR).encode(), json.dumps(s.claims(u)).encode("utf-16"), k),
    "header invalid UTF-8": lambda k, u: signed(b'{"alg":"HS256\xff"}', json.dumps(s.claims(u)).encode(), k),
    "header with a BOM": lambda k, u: signed(b"\xef\xbb\xbf" + json.dumps(HDR).encode(), json.dumps(s.claims(u)).encode(), k),
    # -- parser bombs in the header, which is parsed before the signature is checked
    "header nested 1400 arrays deep": lambda k, u: raw_header(b'{"alg":"HS256","x":' + b"[" * 1400 + b"]" * 1400 + b"}", u),
    "header nested 450 objects deep": lambda k, u: raw_header(b'{"alg":"HS256","x":' + b'{"a":' * 450 + b"1" + b"}" * 450 + b"}", u),
    "header nested 2900 arrays, unclosed": lambda k, u: raw_header(b"[" * 2900, u),
    "header with 200 keys": lambda k, u: raw_header(json.dumps({"alg": "HS256", **{f"k{i}": i for i in range(200)}}).encode(), u),
    "header a 2900-digit number": lambda k, u: raw_header(b'{"alg":"HS256","x":' + b"9" * 2900 + b"}", u),
    "header a 2900-digit exponent": lambda k, u: raw_header(b'{"alg":"HS256","x":1e' + b"9" * 2900 + b"}", u),
    "header a string of 2900 escapes": lambda k, u: raw_header(b'{"alg":"HS256","x":"' + b"\\u0000" * 480 + b'"}', u),
    "header a lone surrogate escape": lambda k, u: raw_header(b'{"alg":"HS\\ud800256"}', u),
    # (each of these fits the worker's 4096-byte token limit, so the JSON parser does see it)
    "header a duplicated alg (HS256 then none)": lambda k, u: signed(b'{"alg":"HS256","alg":"none"}', json.dumps(s.claims(u)).encode(), b"wrong-key-wrong-key-wrong-key-wr"),
}

# Correctly signed tokens whose encoding is odd but that carry no attack (only the secret's
# holder can sign them): the verifier may read them (Foundation's JSONDecoder accepts a
# trailing comma, a BOM, UTF-16) or refuse them; either is fine, a 5xx is not.
ODD_BUT_SIGNED = {"payload exp 1e400 with nbf in the future", "header with a BOM",
                  "payload UTF-16", "payload JSON with a trailing comma"}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_token_is_401_json(get, stack, make_user, case):
    uid = make_user()
    tok = CASES[case](stack.secret, uid)
    resp = get(s.STATUS, headers={"Authorization": "Bearer " + tok}, timeout=10)
    if case in ODD_BUT_SIGNED and resp.status_code == 200:
        assert s.ok(resp)["user_id"] == uid
        return
    assert_401(resp, stack, tok)


def raw_authorization(stack, value: bytes, path: str = s.STATUS):
    head = b"GET " + path.encode() + b" HTTP/1.1\r\nAuthorization: " + value
    return s.raw_http(stack.base_url, head)


@pytest.mark.parametrize("value", [
    b"Bearer \xff\xfe\xfd",
    b"Bearer \xc3\x28.\xa0\xa1.\xe2\x28\xa1",
    b"Bearer eyJhbGciOiJIUzI1NiJ9.\x80\x80\x80.sig",
    b"\xffBearer abc.def.ghi",
    b"Bearer " + "\u00e9t\u00e9".encode("latin-1") + b".x.y",
    b"Bearer " + "\u4e2d\u6587.\u4e2d\u6587.\u4e2d\u6587".encode(),
    b"Bearer a.b.c\x01",
    b"Bearer\tabc.def.ghi",
    b"Bearer  " + b" " * 3000 + b"abc",
], ids=["ff-fe", "bad-utf8-parts", "high-bytes-payload", "ff-scheme", "latin1", "cjk", "ctrl", "tab", "spaces"])
def test_non_utf8_authorization_header_is_401(stack, value):
    """Raw bytes nobody's HTTP library would send: nginx passes them on, the worker refuses."""
    resp = raw_authorization(stack, value)
    assert_401(resp, stack)


@pytest.mark.parametrize("size", [8100, 9000, 16000])
def test_authorization_header_over_8k_is_a_json_4xx(stack, size):
    """An 8 KB-plus token: nginx's header buffer (8 KiB) answers 400 JSON; never a 5xx."""
    resp = raw_authorization(stack, b"Bearer " + b"A" * size)
    s.assert_error(resp, (400, 401), None, secrets=stack.secrets)


def test_8k_token_just_under_nginx_limit_is_401(stack):
    """Just under nginx's 8 KiB line: it reaches the worker, which refuses it (> 4096 bytes)
    before decoding anything."""
    resp = raw_authorization(stack, b"Bearer " + b"A" * 8000)
    assert_401(resp, stack)


def test_many_authorization_headers(stack, token, make_user):
    """Two Authorization headers (one valid, one not): nginx refuses a duplicated
    Authorization (400 JSON); were it to pass one on, the answer would be that user's view
    or a 401 — never someone else's data or a 5xx."""
    uid = make_user()
    tok = token(uid)
    for first, second in ((tok, "junk"), ("junk", tok)):
        head = (f"GET {s.STATUS} HTTP/1.1\r\nAuthorization: Bearer {first}\r\n"
                f"Authorization: Bearer {second}").encode()
        resp = s.raw_http(stack.base_url, head)
        if resp.status_code == 200:
            assert resp.json()["user_id"] == uid
        elif resp.status_code == 400:
            s.assert_error(resp, 400, "bad_request", secrets=stack.secrets)
        else:
            assert_401(resp, stack)


# --------------------------------------------------------------------------- replay


def test_token_replayed_with_another_users_ticket_is_404(get, token, make_user, rows, stack):
    """A's valid token with B's ticket in the path: 404, as if the ticket did not exist;
    with a ticket both have, A's own position."""
    a, b = make_user(), make_user()
    b_only = s.unique_ticket()
    shared = s.unique_ticket()
    rows.sync(b, b_only, age=50, entry_price=2222.0)
    rows.sync(a, shared, age=40, entry_price=1111.0)
    rows.sync(b, shared, age=30, entry_price=3333.0)
    tok_a = token(a)
    s.assert_error(get(s.position_path(b_only), tok_a), 404, "not_found", secrets=stack.secrets)
    assert s.ok(get(s.position_path(shared), tok_a))["entry_price"] == 1111.0
    # B's cached view of the same ticket never reaches A.
    assert s.ok(get(s.position_path(b_only), token(b)))["entry_price"] == 2222.0
    s.assert_error(get(s.position_path(b_only), tok_a), 404, "not_found")


@pytest.mark.parametrize("params", [
    {"user_id": "B"}, {"sub": "B"}, {"user": "B"}, {"uid": "B"}, {"user_id[]": "B"},
])
def test_user_named_in_the_query_is_ignored(get, token, make_user, rows, params):
    """Another user's id in the query changes nothing: the view is the token's user's."""
    a, b = make_user(), make_user()
    rows.sync(b, 77, age=20)
    query = {k: (b if v == "B" else v) for k, v in params.items()}
    for path in (s.STATUS, s.OPEN, s.LOGS, s.GUARDS):
        body = s.ok(get(path, token(a), params=query))
        assert body["user_id"] == a
        assert b not in str(body)
    s.assert_error(get(s.position_path(77), token(a), params=query), 404, "not_found")


def test_user_named_in_headers_is_ignored(get, token, make_user, rows):
    """Headers a proxy might trust (X-User-Id, X-Forwarded-User, Cookie) change nothing."""
    a, b = make_user(), make_user()
    rows.sync(b, 78, age=20)
    headers = {"X-User-Id": b, "X-Forwarded-User": b, "X-Remote-User": b, "Cookie": f"user_id={b}",
               "X-Original-URL": s.position_path(78), "X-Rewrite-URL": s.position_path(78)}
    body = s.ok(get(s.OPEN, token(a), headers=headers))
    assert body["user_id"] == a and body["positions"] == []
    s.assert_error(get(s.position_path(78), token(a), headers=headers), 404, "not_found")
