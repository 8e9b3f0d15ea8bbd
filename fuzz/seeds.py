#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/FuzzRequest.swift into fuzz/corpus/ (small files).

    python3 fuzz/seeds.py

Each seed: one flags byte, then NUL-separated NAME=VALUE FastCGI parameters as nginx sends
them. Flag bit 0 makes the harness sign HTTP_AUTHORIZATION's "Bearer H.P" with its own
secret, so seeds with valid claims reach everything after the signature check. The harness's
clock is 1700000000; `exp` 1800000000 is in its future.
"""
import base64
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus"
SUB = "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
RID = "0123456789abcdef0123456789abcdef"


def b64(obj) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(claims, header=None) -> str:
    return f"Bearer {b64(header or {'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims)}"


def seed(flags: int, method="GET", uri="/api/v1/health", query="", auth=None, rid=RID,
         document_uri=True, extra=()) -> bytes:
    params = [f"REQUEST_METHOD={method}", f"REQUEST_URI={uri}{'?' + query if query else ''}"]
    if document_uri:
        params.append(f"DOCUMENT_URI={uri}")
    params.append(f"QUERY_STRING={query}")
    if auth is not None:
        params.append(f"HTTP_AUTHORIZATION={auth}")
    if rid is not None:
        params.append(f"REQUEST_ID={rid}")
    params.extend(extra)
    return bytes([flags]) + b"\0".join(p.encode("utf-8", "surrogateescape") for p in params)


GOOD = {"sub": SUB, "exp": 1_800_000_000, "iat": 1_699_999_000}
S = 1  # sign

SEEDS = {
    "health": seed(0),
    "health-head": seed(0, method="HEAD"),
    "health-post": seed(0, method="POST"),
    "status-signed": seed(S, uri="/api/v1/reconciliation/status", auth=unsigned(GOOD)),
    "logs-signed": seed(S, uri="/api/v1/reconciliation/logs", query="hours=24&limit=50", auth=unsigned(GOOD)),
    "logs-bad-hours": seed(S, uri="/api/v1/reconciliation/logs", query="hours=0&limit=abc", auth=unsigned(GOOD)),
    "logs-repeated": seed(S, uri="/api/v1/reconciliation/logs", query="hours=2&hours=x&limit=%35", auth=unsigned(GOOD)),
    "open-symbol": seed(S, uri="/api/v1/positions/open", query="symbol=XAUUSD", auth=unsigned(GOOD)),
    "open-bad-symbol": seed(S, uri="/api/v1/positions/open", query="symbol=%C3%A9%00", auth=unsigned(GOOD)),
    "position": seed(S, uri="/api/v1/positions/1000001", auth=unsigned(GOOD)),
    "position-max": seed(S, uri="/api/v1/positions/9223372036854775807", auth=unsigned(GOOD)),
    "position-bad": seed(S, uri="/api/v1/positions/1e3", auth=unsigned(GOOD)),
    "guards": seed(S, uri="/api/v1/guards/status", auth=unsigned(GOOD)),
    "guards-lower-bearer": seed(S, uri="/api/v1/guards/status", auth=unsigned(GOOD).replace("Bearer", "bEaReR")),
    "expired": seed(S, uri="/api/v1/reconciliation/status", auth=unsigned({**GOOD, "exp": 1_600_000_000})),
    "nbf-future": seed(S, uri="/api/v1/reconciliation/status", auth=unsigned({**GOOD, "nbf": 1_700_000_100})),
    "sub-number": seed(S, uri="/api/v1/reconciliation/status", auth=unsigned({**GOOD, "sub": 5})),
    "sub-upper": seed(S, uri="/api/v1/reconciliation/status", auth=unsigned({**GOOD, "sub": SUB.upper()})),
    "alg-none": seed(0, uri="/api/v1/reconciliation/status",
                     auth=unsigned(GOOD, {"alg": "none"}) + "."),
    "alg-hs512": seed(S, uri="/api/v1/reconciliation/status", auth=unsigned(GOOD, {"alg": "HS512"})),
    "unsigned": seed(0, uri="/api/v1/reconciliation/status", auth=unsigned(GOOD) + ".AAAA"),
    "no-auth": seed(0, uri="/api/v1/reconciliation/status"),
    "basic-auth": seed(0, uri="/api/v1/reconciliation/status", auth="Basic dXNlcjpwYXNz"),
    "nested-header": seed(0, uri="/api/v1/reconciliation/status",
                          auth="Bearer " + b64(b'{"alg":' + b"[" * 60 + b"]" * 60 + b"}") + ".e30.c2ln"),
    "no-document-uri": seed(S, uri="/api/v1/positions/open", query="symbol=EURUSD", auth=unsigned(GOOD),
                            document_uri=False),
    "bad-request-id": seed(0, rid="x\r\nInjected: yes"),
    "no-request-id": seed(0, rid=None),
    "unknown-path": seed(0, uri="/api/v1/nope/../health"),
    "delete": seed(0, method="DELETE", uri="/api/v1/positions/1"),
    "many-params": seed(0, extra=[f"HTTP_X_{i}=v{i}" for i in range(20)]),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
