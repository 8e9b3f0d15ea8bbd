"""Slow clients (slowloris): they tie up nginx connections, never a worker.

nginx reads the whole request (header and body) before it hands it to the pool, so a worker
only ever sees complete requests. Several clients at once, more than there are workers:
- dripping the request header one byte every half second,
- sending a header and part of a body, then nothing,
- sending requests and never reading the answers;
meanwhile every ordinary request is answered at once, and nginx's timeouts
(client_header_timeout / client_body_timeout, 10 s) end the first two kinds: the connection
is closed (reset) by about 10 s, with nothing sent that is not JSON. No worker is replaced.
"""
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

import support as s
from hostile import no_worker_crashes  # noqa: F401  (module fixture)

pytestmark = pytest.mark.usefixtures("no_worker_crashes")

NGINX_TIMEOUT_S = 10.0


def connect(stack) -> socket.socket:
    u = urlsplit(stack.base_url)
    return socket.create_connection((u.hostname, u.port or 80), timeout=30)


class Dripper(threading.Thread):
    """Sends `data` one byte every `interval` seconds (then stalls) until the server closes;
    records when and what it received."""

    def __init__(self, stack, data: bytes, interval: float, prefix: bytes = b""):
        super().__init__(daemon=True)
        self.sock = connect(stack)
        self.data, self.interval, self.prefix = data, interval, prefix
        self.received = b""
        self.closed_after: float | None = None
        self.started = time.monotonic()

    def run(self):
        sock = self.sock
        sock.settimeout(self.interval)
        try:
            if self.prefix:
                sock.sendall(self.prefix)
            i = 0
            while time.monotonic() - self.started < NGINX_TIMEOUT_S + 10:
                if i < len(self.data):
                    sock.send(self.data[i:i + 1])
                    i += 1
                try:
                    chunk = sock.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                self.received += chunk
        except OSError:
            pass                                   # reset by nginx: what we wait for
        finally:
            self.closed_after = time.monotonic() - self.started
            sock.close()


def test_slow_clients_hold_no_worker_and_are_cut_off(stack, token, make_user, rows):
    workers = int(stack.env.get("WORKERS", "4"))
    n = 2 * workers + 2
    header_drip = b"GET " + s.STATUS.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    body_prefix = (b"POST " + s.STATUS.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":")
    drippers = [Dripper(stack, header_drip, 0.5) for _ in range(n)]
    stallers = [Dripper(stack, b"", 0.5, prefix=body_prefix) for _ in range(n)]

    # Requests written, answers never read (the sockets' buffers fill, nginx buffers the rest).
    unread = []
    for _ in range(n):
        sock = connect(stack)
        sock.sendall((f"GET {s.GUARDS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      f"{token(s.new_uuid())}\r\n\r\n").encode() * 20)
        unread.append(sock)

    for t in drippers + stallers:
        t.start()
    try:
        time.sleep(2.0)
        # Workers are free: ordinary uncached requests are answered at once.
        with requests.Session() as session:
            for _ in range(3 * workers):
                uid = make_user()                          # a new user: nothing cached
                rows.sync(uid, 5, age=10)
                started = time.monotonic()
                resp = session.get(stack.base_url + s.OPEN, headers=s.bearer(token(uid)), timeout=5)
                assert s.ok(resp)["total_positions"] == 1
                assert time.monotonic() - started < 1.0, "a request waited behind slow clients"
        for t in drippers + stallers:
            t.join(timeout=NGINX_TIMEOUT_S + 15)
    finally:
        for sock in unread:
            sock.close()

    for kind, group in (("header drip", drippers), ("stalled body", stallers)):
        for t in group:
            assert t.closed_after is not None and not t.is_alive(), f"{kind}: still open"
            assert NGINX_TIMEOUT_S - 1 <= t.closed_after <= NGINX_TIMEOUT_S + 5, \
                f"{kind}: closed after {t.closed_after:.1f}s (nginx's timeout is {NGINX_TIMEOUT_S}s)"
            if t.received:   # nginx closes without an answer; anything it sends must be JSON
                assert b"application/json" in t.received, t.received[:300]
    resp = requests.get(stack.base_url + s.HEALTH, timeout=5)
    assert s.ok(resp)["database"] == "ok"
