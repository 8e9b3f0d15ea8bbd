#!/usr/bin/env python3
"""Write one HS256 JWT per generated user, one per line, for the request lists of bench/load.lua.

    JWT_SECRET_KEY=... bench/make_tokens.py USERS OUT_FILE [--ttl SECONDS]

User i (1..USERS) is 00000000-0000-4000-8000-<i as 12 hex digits>, as sql/generate.sql makes
them. Tokens are signed by scripts/jwt_token.py's make_token (same claims: sub, iat, exp).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from jwt_token import make_token  # noqa: E402  (scripts/jwt_token.py)


def user_id(i: int) -> str:
    return "00000000-0000-4000-8000-%012x" % i


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("users", type=int)
    parser.add_argument("out")
    parser.add_argument("--ttl", type=int, default=7 * 86400)
    args = parser.parse_args()
    secret = os.environ.get("JWT_SECRET_KEY", "")
    if not secret:
        print("make_tokens.py: JWT_SECRET_KEY is not set", file=sys.stderr)
        return 2
    now = int(time.time())
    lines = [make_token(secret.encode("utf-8"), user_id(i), args.ttl, now)
             for i in range(1, args.users + 1)]
    tmp = args.out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
