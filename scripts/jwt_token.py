#!/usr/bin/env python3
"""Print an HS256 JWT for a user, signed with JWT_SECRET_KEY from the environment.

    scripts/jwt_token.py USER_UUID [--ttl SECONDS] [--scope "SCOPE …"] [--kid KID]

With --kid the token names that key in its header and is signed with its secret, taken from
JWT_KEYS (`kid=secret` entries) or the file JWT_KEYS_FILE names, as the service reads them.

Claims: sub (the user's UUID, lowercased), iat (now), exp (now + ttl, default 3600 s), and
scope when given (`--scope reconciliation:write` makes the bot's writing token).
Python standard library only.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(secret: bytes, sub: str, ttl: int, now: int, scope: str | None = None,
               kid: str | None = None, extra: dict | None = None) -> str:
    """An HS256 JWT; `extra` claims (e.g. a `jti` making each token distinct) join the payload."""
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    payload = {"sub": sub, "iat": now, "exp": now + ttl, **(extra or {})}
    if scope:
        payload["scope"] = scope
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, payload)
    )
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def uuid_argument(text: str) -> str:
    """argparse type: a UUID, lowercased (as the service prints it)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user_uuid", type=uuid_argument, help="the user's UUID (the token's sub)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    parser.add_argument("--scope", help='space-separated scopes, e.g. "reconciliation:write"')
    parser.add_argument("--kid", help="sign with this named key (JWT_KEYS / JWT_KEYS_FILE)")
    args = parser.parse_args()

    if args.kid:
        secret = named_keys().get(args.kid, "")
        if not secret:
            print(f"jwt_token.py: no key {args.kid} in JWT_KEYS or JWT_KEYS_FILE", file=sys.stderr)
            return 2
    else:
        secret = os.environ.get("JWT_SECRET_KEY", "")
        if not secret:
            print("jwt_token.py: JWT_SECRET_KEY is not set (source $RUN_DIR/stack.env)", file=sys.stderr)
            return 2
    sub = args.user_uuid
    if args.ttl <= 0:
        print("jwt_token.py: --ttl must be positive", file=sys.stderr)
        return 2
    print(make_token(secret.encode("utf-8"), sub, args.ttl, int(time.time()), args.scope, args.kid))
    return 0


def named_keys() -> dict[str, str]:
    """JWT_KEYS and JWT_KEYS_FILE's `kid=secret` entries (whitespace or commas between, # comments)."""
    text = os.environ.get("JWT_KEYS", "")
    path = os.environ.get("JWT_KEYS_FILE", "")
    if path:
        with open(path, encoding="utf-8") as f:
            text += "\n" + f.read()
    keys = {}
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].replace(",", " ").split():
            kid, _, secret = entry.partition("=")
            keys[kid] = secret
    return keys


if __name__ == "__main__":
    sys.exit(main())
