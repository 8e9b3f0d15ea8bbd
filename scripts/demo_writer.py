#!/usr/bin/env python3
"""Moves the demo user's prices, as the reconciliation bot would report them, through the API.

    scripts/demo_writer.py [--user UUID] [--interval SECONDS] [--ticks N] [--seed N]

Every tick it reads the user's open positions (GET /api/v1/positions/open), moves each price
by a small random step and writes one `sync` row per position (POST
/api/v1/reconciliation/events), then an equity snapshot that follows the change in unrealized
P&L (POST /api/v1/equity); now and then a market guard alert (mostly `warning`, sometimes
`critical`). Each commit reaches the dashboard's live stream at once.

BASE_URL and JWT_SECRET_KEY from the environment (`set -a; . .run/stack.env`); `make run`
starts it in the background (log: .run/logs/demo-writer.log, stopped by `make stop`).
A progress line every 30 ticks. Python standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jwt_token import make_token, uuid_argument  # noqa: E402

DEMO_USER = "00000000-0000-4000-8000-000000000001"
# The writer's own identity in the `sub` of its reconciliation:write token (it names the writer).
WRITER = "00000000-0000-4000-8000-0000000d3e70"
GUARD_CONDITIONS = ("price_gap", "bid_ask_spread", "low_liquidity")


class API:
    """The few calls the writer makes, with fresh short-lived tokens (5 min) for each."""

    def __init__(self, base_url: str, secret: bytes, user: str):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.user = user

    def _token(self, sub: str, scope: str | None = None) -> str:
        return make_token(self.secret, sub, 300, int(time.time()), scope)

    def _call(self, method: str, path: str, token: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def open_positions(self) -> dict:
        return self._call("GET", "/api/v1/positions/open", self._token(self.user))

    def guards(self) -> dict:
        return self._call("GET", "/api/v1/guards/status", self._token(self.user))

    def write(self, path: str, body: dict) -> dict:
        return self._call("POST", path, self._token(WRITER, "reconciliation:write"), body)


def decimals(value: float) -> int:
    text = repr(float(value))
    return len(text.split(".")[1]) if "." in text and not text.endswith(".0") else 0


def moved(price: float, entry: float, rng: random.Random) -> float:
    """One random step of about 0.01 %, rounded to the entry price's precision (2 places at least)."""
    places = max(decimals(entry), 2)
    return round(price * (1 + 0.0001 * rng.gauss(0, 1)), places)


def sync_event(user: str, p: dict, price: float, rng: random.Random) -> dict:
    return {
        "id": str(uuid.uuid4()), "user_id": user, "event_type": "sync", "status": "success",
        "mt5_position_id": p["ticket"], "symbol": p["symbol"], "direction": p["direction"],
        "volume": p["volume"], "entry_price": p["entry_price"], "current_price": price,
        "take_profit": p["take_profit"], "stop_loss": p["stop_loss"],
        "matched": 1 if p["matched_with_bot"] else 2, "divergence_reason": p["divergence_reason"],
        "duration_ms": rng.randint(80, 400),
    }


def guard_event(user: str, symbol: str, rng: random.Random) -> dict:
    critical = rng.random() < 0.2
    return {
        "id": str(uuid.uuid4()), "user_id": user, "event_type": "guard_trigger", "status": "success",
        "symbol": symbol, "guard_condition": rng.choice(GUARD_CONDITIONS),
        "guard_level": "critical" if critical else "warning",
        "price_gap_pct": round(rng.uniform(2.0, 4.0) if critical else rng.uniform(0.5, 2.0), 2),
    }


def tick(api: API, rng: random.Random, guard_chance: float) -> tuple[int, float | None]:
    """One round of writes; returns (positions moved, equity written or None)."""
    before = api.open_positions()
    positions = before["positions"]
    events = [sync_event(api.user, p, moved(p["current_price"] or p["entry_price"], p["entry_price"], rng), rng)
              for p in positions]
    if positions and rng.random() < guard_chance:
        events.append(guard_event(api.user, rng.choice(positions)["symbol"], rng))
    if events:
        api.write("/api/v1/reconciliation/events", {"events": events})

    guard = api.guards()["drawdown_guard"]
    if guard["current_equity"] is None:
        return len(positions), None
    after = api.open_positions()
    change = (after["total_unrealized_pnl"] or 0) - (before["total_unrealized_pnl"] or 0)
    equity = round(guard["current_equity"] + change, 2)
    peak = max(guard["peak_equity"], equity)
    api.write("/api/v1/equity", {"snapshots": [{
        "user_id": api.user, "equity": equity, "peak_equity": peak,
        "recorded_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}]})
    return len(positions), equity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", type=uuid_argument, default=DEMO_USER, help=f"the user whose prices move (default {DEMO_USER})")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between ticks (default 2)")
    parser.add_argument("--ticks", type=int, default=0, help="stop after N ticks (default 0: run until stopped)")
    parser.add_argument("--guard-chance", type=float, default=0.03,
                        help="chance of a market guard alert per tick (default 0.03)")
    parser.add_argument("--seed", type=int, help="random seed (default: random)")
    args = parser.parse_args()
    base_url = os.environ.get("BASE_URL", "")
    secret = os.environ.get("JWT_SECRET_KEY", "")
    if not base_url or not secret:
        print("demo_writer.py: BASE_URL and JWT_SECRET_KEY must be set (source .run/stack.env)", file=sys.stderr)
        return 2
    user = args.user
    if args.interval <= 0 or args.ticks < 0 or not 0 <= args.guard_chance <= 1:
        print("demo_writer.py: --interval > 0, --ticks >= 0, 0 <= --guard-chance <= 1", file=sys.stderr)
        return 2

    api = API(base_url, secret.encode(), user)
    rng = random.Random(args.seed)
    done = failures = 0
    print(f"demo_writer: moving the prices of {user} every {args.interval:g} s at {base_url}", flush=True)
    while args.ticks == 0 or done < args.ticks:
        started = time.monotonic()
        try:
            moved_count, equity = tick(api, rng, args.guard_chance)
            done += 1
            if done % 30 == 1 or done == args.ticks:
                print(f"demo_writer: tick {done}: {moved_count} positions moved, equity {equity}", flush=True)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
            failures += 1
            detail = error.read().decode(errors="replace")[:200] if isinstance(error, urllib.error.HTTPError) else ""
            print(f"demo_writer: tick failed ({failures} so far): {error} {detail}", file=sys.stderr, flush=True)
            if args.ticks and failures > args.ticks:
                return 1
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
