"""Fixtures for the HTTP integration tests of the trading account API (shared/API.md).

The stack (nginx → FastCGI → Swift pool → Postgres + memcached) is brought up by `make test`
before pytest runs; these tests never start it. They read `$RUN_DIR/stack.env` (default
`.test-run/stack.env` under the repository root) lazily, so collection works without a stack.

Isolation: every test makes its own users (uuid4) and rows. Every write through `rows` waits
until the supervisor has invalidated the user's cached views (`InvalidationWatch`).
Row times are explicit (`now` truncated to the second, minus an age) so order is exact.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import requests

import support as s
from browser import console_problems, start_chromium, wait_for

# --------------------------------------------------------------------------- stack


@dataclass
class Stack:
    env: dict

    def __getitem__(self, key):
        return self.env[key]

    @property
    def base_url(self) -> str:
        return self.env["BASE_URL"].rstrip("/")

    @property
    def ttl(self) -> float:
        return float(self.env.get("CACHE_TTL_SECONDS", "5"))

    @property
    def secret(self) -> bytes:
        return self.env["JWT_SECRET_KEY"].encode()

    @property
    def secrets(self) -> list[str]:
        """Values no error body may ever show."""
        from urllib.parse import urlsplit
        url = self.env.get("DATABASE_URL", "")
        try:
            password = urlsplit(url).password or ""
        except ValueError:
            password = ""
        return [self.env.get("JWT_SECRET_KEY", ""), url, password]


REQUIRED_KEYS = ("BASE_URL", "DATABASE_URL", "JWT_SECRET_KEY", "MEMCACHED_SERVERS",
                 "CACHE_TTL_SECONDS", "RATE_LIMIT_PER_TOKEN", "RATE_BURST_PER_TOKEN")


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The running test stack, from $RUN_DIR/stack.env; waits briefly until it answers."""
    path = s.run_dir() / "stack.env"
    if not path.is_file():
        pytest.fail(f"{path} not found: the stack is not up (run `make test`, which starts it)",
                    pytrace=False)
    env = s.parse_env_file(path)
    missing = [k for k in REQUIRED_KEYS if not env.get(k)]
    if missing:
        pytest.fail(f"{path} lacks {', '.join(missing)}", pytrace=False)
    st = Stack(env)

    def healthy():
        r = requests.get(st.base_url + s.HEALTH, timeout=5)
        return r.status_code == 200 and r.json().get("database") == "ok"

    s.wait_until(healthy, timeout=30, interval=0.5, what=f"{st.base_url}{s.HEALTH} to answer 200")
    return st


@pytest.fixture(scope="session")
def http(stack):
    with requests.Session() as session:
        yield session


def _send(session, stack, method, path, token=None, *, params=None, headers=None, data=None,
          retry_429=True, timeout=10.0):
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    url = path if path.startswith("http") else stack.base_url + path
    for attempt in range(8):
        resp = session.request(method, url, params=params, headers=hdrs, data=data,
                               timeout=timeout, allow_redirects=False)
        # Rate limits are tested in test_rate_limit.py; elsewhere a 429 is the shared client
        # address running hot, not what the test checks, so wait it out.
        if resp.status_code != 429 or not retry_429:
            return resp
        time.sleep(min(float(resp.headers.get("Retry-After", "1") or 1), 2.0) * (0.5 + attempt / 4))
    return resp


@pytest.fixture
def get(http, stack):
    """get(path, token=None, *, params=None, headers=None, retry_429=True) -> requests.Response"""
    def _get(path, token=None, **kw):
        return _send(http, stack, "GET", path, token, **kw)
    return _get


@pytest.fixture
def request_(http, stack):
    """request_(method, path, token=None, **kw) -> requests.Response, for non-GET methods."""
    def _request(method, path, token=None, **kw):
        return _send(http, stack, method, path, token, **kw)
    return _request


# --------------------------------------------------------------------------- tokens


@pytest.fixture
def token(stack):
    """token(user_id, **claims): an HS256 token signed with JWT_SECRET_KEY.

    Claims default to sub=user_id, iat=now, exp=now+3600; pass s.OMIT to drop one.
    """
    def _token(user_id, **overrides):
        return s.make_jwt(s.claims(user_id, **overrides), stack.secret)
    return _token


@pytest.fixture
def jwt(stack):
    """jwt(payload, header=None, key=None, sign_alg="HS256"): any token, for the bad ones."""
    def _jwt(payload, *, header=None, key=None, sign_alg="HS256"):
        return s.make_jwt(payload, stack.secret if key is None else key,
                          header=header, sign_alg=sign_alg)
    return _jwt


# --------------------------------------------------------------------------- database

_conn = None


def _connect(url):
    import psycopg  # imported lazily so collection works without it
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@pytest.fixture
def db(stack):
    """An autocommit psycopg connection (shared, reconnected after a Postgres restart)."""
    global _conn
    if _conn is not None:
        try:
            _conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - the server went away (test_zz_faults)
            try:
                _conn.close()
            except Exception:  # noqa: BLE001
                pass
            _conn = None
    if _conn is None:
        _conn = s.wait_until(lambda: _connect(stack["DATABASE_URL"]), timeout=30,
                             interval=0.5, what="Postgres to accept connections")
    return _conn


@pytest.fixture
def now(db) -> datetime:
    """The database's now(), truncated to whole seconds: the base every row's time is set from."""
    return db.execute("SELECT date_trunc('second', now())").fetchone()[0]


@pytest.fixture
def make_user(db):
    """make_user() -> a new user's id (lowercase uuid string) with a users row."""
    def _make_user():
        uid = s.new_uuid()
        db.execute("INSERT INTO users (id, email) VALUES (%s, %s)",
                   (uid, f"it-{uid}@example.test"))
        return uid
    return _make_user


LOG_COLUMNS = {
    "id", "user_id", "signal_id", "approval_id", "event_type", "status", "mt5_position_id",
    "symbol", "direction", "volume", "entry_price", "current_price", "take_profit",
    "stop_loss", "matched", "divergence_reason", "slippage_pips", "close_reason",
    "closed_price", "pnl_gbp", "pnl_percent", "duration_ms", "guard_condition", "guard_level",
    "price_gap_pct", "error_message", "created_at", "updated_at",
}


class Row(dict):
    """An inserted reconciliation_logs row: its columns plus `ts`, created_at as the API prints it."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


class InvalidationWatch:
    """Waits until the supervisor has retired what a write changed: the user's generation (or
    the epoch, for writes that touch everyone) replaced, or the whole cache's epoch replaced
    after the listener reconnected (a commit made while it was down is never notified). Every
    write through `Rows` waits, so a test that writes and then reads sees its write however the
    reads are timed; nothing retired within 3 s fails the test. While memcached is down (the
    fault tests) nothing is waited for. Then 15 ms more: a request loop reads the epoch at most
    every 10 ms (ResponseCache.epochRefreshMicroseconds)."""

    def __init__(self, servers: str):
        self.servers = servers

    def _read(self, key):
        try:
            return True, s.memcached_get(self.servers, key)
        except OSError:
            return False, None

    @contextlib.contextmanager
    def after(self, key):
        reachable, before = self._read(key)
        _, epoch = self._read(s.EPOCH_KEY)
        yield
        if not reachable:
            return

        def retired():
            ok, now = self._read(key)
            if not ok or now not in (before, None, b"paused"):
                return True
            _, now_epoch = self._read(s.EPOCH_KEY)
            return now_epoch not in (epoch, None, b"paused")

        s.wait_until(retired, timeout=3, interval=0.002, what=f"the supervisor to replace {key} after a commit")
        time.sleep(0.015)


class Rows:
    """Inserts rows naming only API.md's columns, with defaults that satisfy the CHECKs, and
    waits until the write has invalidated the user's cached views (`InvalidationWatch`).

    Times: `age` seconds before the test's `now` (whole seconds unless age is fractional),
    or an explicit `at` datetime.
    """

    def __init__(self, db, now: datetime, watch: InvalidationWatch):
        self.db = db
        self.now = now
        self.watch = watch

    def at(self, age: float) -> datetime:
        return self.now - timedelta(seconds=age)

    def log(self, user_id, *, age: float = 60, at: datetime | None = None, **cols) -> Row:
        unknown = set(cols) - LOG_COLUMNS
        assert not unknown, f"not API.md columns: {unknown}"
        cols["user_id"] = user_id
        cols["created_at"] = at if at is not None else self.at(age)
        names = list(cols)
        sql = (f"INSERT INTO reconciliation_logs ({', '.join(names)}) "
               f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING id, created_at")
        with self.watch.after(s.generation_key(user_id)):
            rid, created = self.db.execute(sql, [cols[n] for n in names]).fetchone()
        row = Row(cols)
        row["id"] = str(rid)
        row["created_at"] = created
        row["ts"] = s.rfc3339(created)
        return row

    def sync(self, user_id, ticket, *, symbol="XAUUSD", direction="buy", volume=0.1,
             entry_price=1950.5, current_price=1955.75, matched=1, status="success",
             duration_ms=200, **cols) -> Row:
        return self.log(user_id, event_type="sync", status=status, mt5_position_id=ticket,
                        symbol=symbol, direction=direction, volume=volume,
                        entry_price=entry_price, current_price=current_price,
                        matched=matched, duration_ms=duration_ms, **cols)

    def close(self, user_id, ticket, *, symbol="XAUUSD", direction="buy", volume=0.1,
              entry_price=1950.5, current_price=1960.0, matched=1, status="success",
              close_reason="take_profit", closed_price=1960.0, pnl_gbp=95.0, **cols) -> Row:
        return self.log(user_id, event_type="close", status=status, mt5_position_id=ticket,
                        symbol=symbol, direction=direction, volume=volume,
                        entry_price=entry_price, current_price=current_price, matched=matched,
                        close_reason=close_reason, closed_price=closed_price, pnl_gbp=pnl_gbp,
                        **cols)

    def guard(self, user_id, *, symbol="XAUUSD", condition="price_gap", level="warning",
              price_gap_pct=2.5, status="success", **cols) -> Row:
        return self.log(user_id, event_type="guard_trigger", status=status, symbol=symbol,
                        guard_condition=condition, guard_level=level,
                        price_gap_pct=price_gap_pct, **cols)

    def guards_bulk(self, user_id, count: int, *, first_age: int = 1, level="normal") -> None:
        """`count` guard rows, one per second, the newest `first_age` seconds old."""
        with self.watch.after(s.generation_key(user_id)):
            self._guards_bulk(user_id, count, first_age, level)

    def _guards_bulk(self, user_id, count, first_age, level):
        self.db.execute(
            "INSERT INTO reconciliation_logs (user_id, event_type, status, symbol,"
            " guard_condition, guard_level, created_at)"
            " SELECT %s, 'guard_trigger', 'success', 'XAUUSD', 'price_gap', %s,"
            "        %s - make_interval(secs => g)"
            " FROM generate_series(%s::int, %s::int) AS g",
            (user_id, level, self.now, first_age, first_age + count - 1))

    def snapshot(self, user_id, equity, peak_equity, *, age: float = 60,
                 at: datetime | None = None) -> None:
        with self.watch.after(s.generation_key(user_id)):
            self.db.execute(
                "INSERT INTO equity_snapshots (user_id, equity, peak_equity, recorded_at)"
                " VALUES (%s, %s, %s, %s)",
                (user_id, equity, peak_equity, at if at is not None else self.at(age)))

    def instrument(self, symbol, contract_size) -> None:
        """Contract sizes count for every user: the write replaces the epoch."""
        with self.watch.after(s.EPOCH_KEY):
            self.db.execute(
                "INSERT INTO instruments (symbol, contract_size) VALUES (%s, %s)"
                " ON CONFLICT (symbol) DO NOTHING",
                (symbol, contract_size))


@pytest.fixture
def rows(db, now, stack) -> Rows:
    return Rows(db, now, InvalidationWatch(stack["MEMCACHED_SERVERS"]))


# --------------------------------------------------------------------------- stack.sh


@pytest.fixture(scope="session")
def stack_sh(stack):
    """stack_sh("pg-stop") runs scripts/stack.sh with this RUN_DIR; returns its stdout."""
    def _run(*args, timeout=90):
        return s.run_stack_sh(*args, timeout=timeout)
    return _run


# --------------------------------------------------------------------------- ordering


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: stops/starts parts of the stack; runs last")
    config.addinivalue_line("markers", "smoke: the subset run against the installed Debian package (Tests/Package)")


def pytest_collection_modifyitems(session, config, items):
    """Fault tests run after everything else, whatever order the files were given in."""
    items.sort(key=lambda item: 1 if item.get_closest_marker("faults") else 0)


# --------------------------------------------------------------------------- a real browser


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the dashboard tests (browser.py)."""
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, stack):
    """The dashboard at / signed out (an empty sessionStorage), the network as it is."""
    from selenium.webdriver.common.by import By
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    browser.get(stack.base_url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(stack.base_url + "/")
    wait_for(lambda: browser.find_element(By.ID, "sign-in").is_displayed(), 5, "the sign-in form")
    console_problems(browser)  # forget the page's earlier life
    return browser
