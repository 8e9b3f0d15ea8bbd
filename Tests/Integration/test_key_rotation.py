"""Key rotation without downtime (docs/OPERATIONS.md): named HS256 keys in JWT_KEYS_FILE, which
each worker reads when it starts; SIGHUP replaces the workers one at a time. Under load, no
valid token is ever refused."""
from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

import support as s

pytestmark = pytest.mark.faults  # reloads the pool

# The file the test stack's pool reads its named keys from (scripts/test.sh sets it).
KEYS_FILE = Path(os.environ.get("JWT_KEYS_FILE", "/nonexistent"))
VIEW = "/api/v1/guards/status"


def reload_pool(text: str, *, expect: str = "reload complete") -> None:
    """Writes the keys file, sends SIGHUP, and waits for the pool's log to say `expect`."""
    assert KEYS_FILE.is_file(), "JWT_KEYS_FILE must name the pool's keys file (scripts/test.sh sets it)"
    log = s.run_dir() / "logs" / "pool.log"
    seen = log.read_text(errors="replace").count(expect)
    KEYS_FILE.write_text(text)
    os.kill(s.stack_pids()["pool"][0], signal.SIGHUP)
    s.wait_until(lambda: log.read_text(errors="replace").count(expect) > seen, timeout=60, what=expect)


def signed(kid: str, secret: str, user: str) -> str:
    return s.make_jwt(s.claims(user), secret.encode(), header={"alg": "HS256", "typ": "JWT", "kid": kid})


@pytest.fixture
def restore_keys():
    yield
    reload_pool("")


class Load(s.ClientThreads):
    """Threads sending GETs with whichever tokens are `active`, counting statuses by key."""

    def __init__(self, base_url: str, active: list[tuple[str, str]], threads: int = 4):
        super().__init__(threads, join_timeout=15)
        self.base_url = base_url
        self.active = active  # (kid, token); replaced as the rotation goes
        self.results: Counter = Counter()
        self.lock = threading.Lock()

    def run(self, index: int) -> None:
        with requests.Session() as session:
            n = index
            while not self.stop.is_set():
                kid, token = self.active[n % len(self.active)]
                n += 1
                try:
                    status = session.get(self.base_url + VIEW, headers=s.bearer(token), timeout=10).status_code
                except requests.RequestException as e:
                    status = type(e).__name__
                with self.lock:
                    self.results[(kid, status)] += 1



def test_rotation_under_load_refuses_no_valid_token(stack, make_user, restore_keys):
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    users = [make_user() for _ in range(16)]
    reload_pool(f"old={old}\n")
    with Load(stack.base_url, [("old", signed("old", old, u)) for u in users]) as load:
        time.sleep(0.5)
        # 1. The new key is added; the old one still signs.
        reload_pool(f"old={old}\nnew={new}\n")
        # 2. The issuer switches to the new key; tokens of both are in use.
        load.active = load.active + [("new", signed("new", new, u)) for u in users]
        reload_pool(f"new={new}\nold={old}\n")
        time.sleep(0.5)
        # 3. Once the old tokens have expired (here: are no longer sent), the old key goes.
        load.active = [("new", signed("new", new, u)) for u in users]
        time.sleep(0.3)
        reload_pool(f"new={new}\n")
        time.sleep(0.5)
    results = load.results
    refused = {k: v for k, v in results.items() if k[1] != 200 and k[1] != 429}
    assert not refused, f"valid tokens refused or failed during the rotation: {dict(results)}"
    assert results[("old", 200)] > 50 and results[("new", 200)] > 50, dict(results)

    # After the rotation: the retired key's tokens are refused by name, the new key's accepted.
    resp = requests.get(stack.base_url + VIEW, headers=s.bearer(signed("old", old, users[0])), timeout=10)
    s.assert_error(resp, 401, "unauthorized")
    assert "unknown key" in resp.json()["message"]
    assert requests.get(stack.base_url + VIEW, headers=s.bearer(signed("new", new, users[0])), timeout=10).status_code == 200
    # A token that names the new key but is signed with the old secret is a bad signature.
    resp = requests.get(stack.base_url + VIEW, headers=s.bearer(signed("new", old, users[0])), timeout=10)
    s.assert_error(resp, 401, "unauthorized")
    assert "signature" in resp.json()["message"]
    # Tokens without kid still use JWT_SECRET_KEY, the unnamed key.
    plain = s.make_jwt(s.claims(users[0]), stack.secret)
    assert requests.get(stack.base_url + VIEW, headers=s.bearer(plain), timeout=10).status_code == 200


def test_a_broken_keys_file_is_refused_and_the_workers_keep_serving(stack, make_user, restore_keys):
    workers = set(s.stack_pids()["worker"])
    reload_pool("this is not kid=secret\n", expect="reload refused")
    assert set(s.stack_pids()["worker"]) == workers
    token = s.make_jwt(s.claims(make_user()), stack.secret)
    assert requests.get(stack.base_url + VIEW, headers=s.bearer(token), timeout=10).status_code == 200
