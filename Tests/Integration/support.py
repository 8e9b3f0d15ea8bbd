"""Plain helpers shared by the integration tests: stack.env, JWTs, timestamps, assertions.

Everything here is free of fixtures so test modules can import it directly
(``from support import ...``); conftest.py wraps the stateful parts as fixtures.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shlex
import socket
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

JSON_CT = "application/json; charset=utf-8"
REQUEST_ID_RE = re.compile(r"^[0-9a-f]{32}$")  # nginx's $request_id: 16 random bytes in hex
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_Z_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
RETRY_AFTER_RE = re.compile(r"^\d+$")

ERROR_KEYS = {"error", "message", "request_id"}
EVENT_KEYS = {"id", "event_type", "status", "ticket", "symbol", "matched",
              "divergence_reason", "error_message", "created_at"}
POSITION_KEYS = {"ticket", "symbol", "direction", "volume", "entry_price", "current_price",
                 "take_profit", "stop_loss", "unrealized_pnl", "matched_with_bot",
                 "divergence_reason", "opened_at", "updated_at"}
POSITION_DETAIL_KEYS = POSITION_KEYS | {"open", "close_reason", "closed_price", "realized_pnl"}
STATUS_KEYS = {"user_id", "status", "last_sync_at", "total_syncs", "last_sync_duration_ms",
               "open_positions_count", "matched_positions", "divergences_detected",
               "recent_events", "error_message"}
LOGS_KEYS = {"user_id", "hours", "events", "next_cursor"}
POSITIONS_KEYS = {"user_id", "total_positions", "total_unrealized_pnl",
                  "total_unrealized_pnl_pct", "positions", "last_updated_at"}
GUARDS_KEYS = {"user_id", "system_status", "drawdown_guard", "market_guard_alerts",
               "any_positions_should_close", "last_evaluated_at"}
DRAWDOWN_KEYS = {"current_equity", "peak_equity", "current_drawdown_pct", "alert_type",
                 "should_close_all", "time_to_liquidation_seconds"}
ALERT_KEYS = {"symbol", "condition_type", "alert_type", "price_gap_pct",
              "should_close_positions", "detected_at"}

# The five views that need a token (path templates; {ticket} filled in by the caller).
STATUS = "/api/v1/reconciliation/status"
LOGS = "/api/v1/reconciliation/logs"
OPEN = "/api/v1/positions/open"
HEALTH = "/api/v1/health"
GUARDS = "/api/v1/guards/status"
STREAM = "/api/v1/stream"


def position_path(ticket) -> str:
    return f"/api/v1/positions/{ticket}"


# --------------------------------------------------------------------------- stack.env

def run_dir() -> Path:
    """$RUN_DIR (default .test-run); a relative path is taken from the repository root."""
    p = Path(os.environ.get("RUN_DIR", ".test-run"))
    return p if p.is_absolute() else REPO_ROOT / p


def stack_script() -> Path:
    """scripts/stack.sh of the repository ($STACK_SH overrides, for running against another stack)."""
    return Path(os.environ.get("STACK_SH", REPO_ROOT / "scripts" / "stack.sh"))


# The stack's rate-limit settings (scripts/lib/config.sh RATE_SETTINGS), as stack.env names them.
RATE_LIMIT_KEYS = ("RATE_LIMIT_PER_ADDR", "RATE_BURST_PER_ADDR", "RATE_LIMIT_PER_TOKEN", "RATE_BURST_PER_TOKEN",
                   "STREAMS_PER_ADDR")


def run_stack_sh(*args, env: dict | None = None, timeout: float = 120) -> str:
    """scripts/stack.sh with this RUN_DIR and extra environment; returns its stdout."""
    script = stack_script()
    assert script.is_file(), f"{script} not found"
    proc = subprocess.run(["bash", str(script), *args], cwd=REPO_ROOT,
                          env=dict(os.environ, RUN_DIR=str(run_dir()), **(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, \
        f"stack.sh {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def stack_up(stack, **settings):
    """`stack.sh up` with the settings the running stack recorded, and `settings` over them:
    starts the pool if it is down (or restarts it if a pool setting changed), reloads nginx,
    waits for health, rewrites stack.env."""
    env = {}
    conf = run_dir() / "stack.conf"
    if conf.is_file():
        env.update(parse_env_file(conf))
    env.update({k: v for k, v in stack.env.items()
                if k in ("DATABASE_URL", "MEMCACHED_SERVERS", "JWT_SECRET_KEY")})
    keep = ("HTTP_PORT", "PG_PORT", "MC_PORT", "WORKERS", "CACHE_TTL_SECONDS", "LOG_LEVEL",
            "TRADING_API_BIN", "DATABASE_URL", "MEMCACHED_SERVERS", "JWT_SECRET_KEY",
            *RATE_LIMIT_KEYS)
    env = {k: v for k, v in env.items() if k in keep and v}
    env["DEMO_DATA"] = "0"
    env.update(settings)
    run_stack_sh("up", env=env, timeout=180)
    wait_nginx_settled()


def wait_nginx_settled(timeout: float = 15) -> None:
    """Until the workers of nginx's previous generation (a reload: `stack.sh up` reloads nginx)
    are gone. An old worker closes its idle keep-alive connections as it shuts down, and a
    client reusing one at that moment sees it closed (nginx's documented race; fault case 6
    measures it): load that starts right after a reload must not count that as the case's."""
    master = stack_pids().get("nginx", [None])[0]
    if master is None:
        return

    def settled():
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            return not any(b"shutting down" in Path(f"/proc/{c}/cmdline").read_bytes() for c in children)
        except OSError:
            return False
    wait_until(settled, timeout=timeout, interval=0.1, what="nginx's old workers to finish after the reload")


def stack_pids() -> dict[str, list[int]]:
    """The stack's running processes as `stack.sh pids` checks them (recorded PID and start
    time): {"postgres": [pid], "memcached": [pid], "pool": [pid], "worker": [...], "nginx": [pid]}."""
    pids: dict[str, list[int]] = {}
    for line in run_stack_sh("pids").splitlines():
        name, pid = line.split()
        pids.setdefault(name, []).append(int(pid))
    return pids


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as a shell would source them (quotes, `export`, comments)."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            continue
        parts = shlex.split(value, comments=True, posix=True)
        env[key] = " ".join(parts)
    return env


def parse_rate(spec: str) -> float:
    """nginx rate ("20r/s", "600r/m") in requests per second."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*r/([sm])\s*", spec)
    if not m:
        raise ValueError(f"cannot parse rate {spec!r}")
    n = float(m.group(1))
    return n if m.group(2) == "s" else n / 60.0


# --------------------------------------------------------------------------- JWT

OMIT = object()  # pass as a claim value to leave the claim out


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def sign(signing_input: str, key: bytes, alg: str = "HS256") -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return b64url(hmac.new(key, signing_input.encode("ascii"), digest).digest())


def make_jwt(payload: dict, key: bytes, *, header: dict | None = None,
             sign_alg: str | None = "HS256") -> str:
    """A compact JWS. `header` defaults to HS256/JWT; `sign_alg=None` leaves the signature empty."""
    header = {"alg": "HS256", "typ": "JWT"} if header is None else header
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    signature = "" if sign_alg is None else sign(signing_input, key, sign_alg)
    return f"{signing_input}.{signature}"


def claims(sub, /, **overrides) -> dict:
    """Default claims (sub, iat now, exp in an hour) with overrides; OMIT drops a claim."""
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + 3600}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not OMIT}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- values

def rfc3339(dt: datetime) -> str:
    """How the service prints a timestamptz: UTC, `Z`, fraction only when present, trimmed."""
    dt = dt.astimezone(timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += "." + f"{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(text: str) -> datetime:
    assert RFC3339_Z_RE.match(text), f"not an RFC 3339 UTC timestamp with Z: {text!r}"
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def new_uuid() -> str:
    return str(uuid.uuid4())


def unique_symbol(prefix: str = "T") -> str:
    """A symbol nobody else uses (matches ^[A-Z0-9._]{1,20}$)."""
    return (prefix + uuid.uuid4().hex.upper())[:20]


def unique_ticket() -> int:
    return int.from_bytes(os.urandom(4), "big") + 1_000_000


# --------------------------------------------------------------------------- assertions

FORBIDDEN_IN_ERRORS = [
    "traceback", "stack trace", "fatal error", ".swift", "select ", "insert into",
    " from reconciliation", "reconciliation_logs", "equity_snapshots", "position_state",
    "libpq", "pq_", "could not connect", "sqlstate", "memcached_", "<html", "nginx/",
]


def assert_no_leak(text: str, secrets: list[str] = ()) -> None:
    """Error bodies never carry stack traces, SQL or secrets."""
    low = text.lower()
    for needle in FORBIDDEN_IN_ERRORS:
        assert needle not in low, f"error body leaks {needle!r}: {text[:500]}"
    for secret in secrets:
        if secret and len(secret) >= 6:
            assert secret not in text, f"error body leaks a secret: {text[:500]}"


def assert_json_response(resp) -> None:
    """Every response: JSON content type, one X-Request-Id of nginx's form."""
    ct = resp.headers.get("Content-Type", "")
    assert ct.replace(" ", "").lower() == JSON_CT.replace(" ", ""), \
        f"{resp.status_code} {resp.url}: Content-Type {ct!r}, body {resp.text[:300]!r}"
    rid = resp.headers.get("X-Request-Id", "")
    assert REQUEST_ID_RE.match(rid), f"{resp.status_code} {resp.url}: X-Request-Id {rid!r}"


def ok(resp) -> dict:
    """A 200 JSON view; returns the parsed body."""
    assert resp.status_code == 200, f"{resp.url}: {resp.status_code} {resp.text[:500]}"
    assert_json_response(resp)
    return resp.json()


def assert_error(resp, status: int | tuple, code: str | None, *, secrets: list[str] = ()) -> dict:
    """{error, message, request_id}, request_id == X-Request-Id, JSON, no leaks."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, \
        f"{resp.url}: expected {statuses}, got {resp.status_code} {resp.text[:500]}"
    assert_json_response(resp)
    body = resp.json()
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, f"error body keys: {body}"
    if code is not None:
        assert body["error"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"], body
    assert body["request_id"] == resp.headers["X-Request-Id"], \
        f"body request_id {body['request_id']!r} != header {resp.headers['X-Request-Id']!r}"
    assert_no_leak(resp.text, secrets)
    return body


def assert_retry_after(resp) -> int:
    value = resp.headers.get("Retry-After", "")
    assert RETRY_AFTER_RE.match(value), f"Retry-After must be whole seconds, got {value!r}"
    assert int(value) >= 1, f"Retry-After {value!r}"
    return int(value)


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Polls predicate() until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - transient failures while polling
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------- raw HTTP

class RawResponse:
    """Enough of a requests.Response for assert_error(): status_code, headers, text, json()."""

    def __init__(self, status_code: int, headers: dict, body: bytes, url: str):
        self.status_code = status_code
        self.headers = headers
        self.content = body
        self.text = body.decode("utf-8", "replace")
        self.url = url

    def json(self):
        return json.loads(self.text)


class _Headers(dict):
    def __init__(self, items):
        super().__init__()
        for k, v in items:
            key = k.lower()
            super().__setitem__(key, v if key not in self else self[key] + ", " + v)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(key.lower())


def raw_http(base_url: str, head: bytes, body: bytes = b"", *, timeout: float = 10.0,
             early_wait: float = 2.0, add_host: bool = True) -> RawResponse:
    """Sends a hand-made request (for what `requests` will not send, or to survive an early
    answer such as 413 while the body is still being written) and reads the answer to EOF.

    `head` is the request line and headers without the final blank line; a Host header
    (unless add_host=False) and `Connection: close` are added when missing.
    """
    u = urlsplit(base_url)
    host, port = u.hostname, u.port or 80
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    names = {ln.split(b":", 1)[0].strip().lower() for ln in lines[1:] if b":" in ln}
    if add_host and b"host" not in names:
        lines.append(f"Host: {host}:{port}".encode())
    if b"connection" not in names:
        lines.append(b"Connection: close")
    data = b"\r\n".join(lines) + b"\r\n\r\n"
    sock = socket.create_connection((host, port), timeout=timeout)
    chunks: list[bytes] = []
    try:
        sock.sendall(data)
        if body:
            # An early answer (413 on Content-Length) comes before we write the body.
            sock.settimeout(early_wait)
            try:
                first = sock.recv(65536)
                if first:
                    chunks.append(first)
            except socket.timeout:
                pass
            sock.settimeout(timeout)
            if not chunks:
                try:
                    for i in range(0, len(body), 65536):
                        sock.sendall(body[i:i + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    pass
        while not _complete(b"".join(chunks)):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    raw = b"".join(chunks)
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head_part.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/"), f"no HTTP answer: {raw[:200]!r}"
    status = int(status_line.split()[1])
    headers = _Headers((h.split(":", 1)[0].strip(), h.split(":", 1)[1].strip())
                       for h in header_lines if ":" in h)
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        rest = _dechunk(rest)
    elif "Content-Length" in headers:
        rest = rest[: int(headers["Content-Length"])]
    return RawResponse(status, headers, rest, base_url + " (raw)")


def _complete(raw: bytes) -> bool:
    """True once a response with a Content-Length has all of its body (nginx may linger)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value.strip())
    return False


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


# --------------------------------------------------------------------------- processes (Linux /proc)


def _live_processes():
    """(pid, fields after the command name) of every live, non-zombie process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            yield int(entry), fields


def children_of(pid: int) -> set[int]:
    """Live (non-zombie) child processes of `pid`."""
    return {child for child, fields in _live_processes() if int(fields[1]) == pid}


def session_members(sid: int) -> set[int]:
    """Live processes of session `sid` (the pool runs in its own session: setsid)."""
    return {member for member, fields in _live_processes() if int(fields[3]) == sid}


def burst(base_url: str, path: str, tokens: list[str]) -> list[tuple[int, str | None, bytes]]:
    """One GET of PATH per token, all sent at once on connections opened beforehand (a
    stampede); the responses' (status, X-Cache, body) in token order."""
    import http.client
    base = urlsplit(base_url)
    conns = [http.client.HTTPConnection(base.hostname, base.port, timeout=10) for _ in tokens]
    for conn in conns:
        conn.connect()
    barrier = threading.Barrier(len(tokens))
    results: list = [None] * len(tokens)

    def send(i):
        barrier.wait()
        conns[i].request("GET", path, headers={"Authorization": f"Bearer {tokens[i]}"})
        resp = conns[i].getresponse()
        results[i] = (resp.status, resp.getheader("X-Cache"), resp.read())

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for conn in conns:
        conn.close()
    return results


# --------------------------------------------------------------------------- memcached

def memcached_get(servers: str, key: str, timeout: float = 2.0) -> bytes | None:
    """One `get` over memcached's ASCII protocol, from the first of MEMCACHED_SERVERS (a unix
    socket path or host:port). None when the key holds nothing."""
    server = servers.split(",")[0].strip()
    if server.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(server)
    else:
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "11211")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    with sock:
        sock.sendall(f"get {key}\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            data += chunk
            if data == b"END\r\n":
                return None
            if data.startswith(b"VALUE "):
                header, _, rest = data.partition(b"\r\n")
                length = int(header.split()[3])
                if len(rest) >= length + len(b"\r\nEND\r\n"):
                    return rest[:length]
            elif b"\r\n" in data:
                raise ConnectionError(f"memcached answered {data[:80]!r}")


def generation_key(user_id: str) -> str:
    """The memcached key of a user's cache generation (CacheKeys.generation)."""
    return f"ta3:gen:{user_id}"


EPOCH_KEY = "ta3:epoch:0"  # the copy on the one memcached server (CacheKeys.epochCopies)


class ClientThreads:
    """`count` threads running `self.run(index)` until `self.stop` is set; a context manager
    that starts them on entry and stops and joins them on exit (load beside a fault)."""

    def __init__(self, count: int, join_timeout: float = 20):
        self.stop = threading.Event()
        self.join_timeout = join_timeout
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(count)]

    def run(self, index: int) -> None:
        raise NotImplementedError

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(self.join_timeout)

