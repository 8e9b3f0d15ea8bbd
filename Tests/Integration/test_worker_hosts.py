"""A pool on another host than nginx listens on TCP (FCGI_SOCKET=host:port) and takes
connections only from the web servers in FCGI_WEB_SERVER_ADDRS — libfcgi's own allow-list: it
closes any other peer's connection as it accepts it. Here a second pool of the release binary
on a loopback TCP port, with the test stack's database and memcached, spoken to by libfcgi's
own client (cgi-fcgi)."""
from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

import support as s

BIN = os.environ.get("TRADING_API_BIN", str(s.REPO_ROOT / ".build" / "release" / "trading-api"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pool_env(stack, fcgi_socket: str, addresses: str | None) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": stack["DATABASE_URL"],
           "MEMCACHED_SERVERS": stack["MEMCACHED_SERVERS"], "JWT_SECRET_KEY": stack["JWT_SECRET_KEY"],
           "FCGI_SOCKET": fcgi_socket, "WORKERS": "1", "FCGI_LOOPS": "1",
           "CACHE_TTL_SECONDS": "0"}  # no change listener: this pool only answers
    if addresses is not None:
        env["FCGI_WEB_SERVER_ADDRS"] = addresses
    return env


@pytest.fixture
def tcp_pool(stack, tmp_path):
    """tcp_pool(addresses) → the port of a pool listening on 127.0.0.1 that allows `addresses`."""
    started = []

    def _start(addresses: str) -> int:
        port = free_port()
        log = open(tmp_path / f"pool-{port}.log", "w")
        proc = subprocess.Popen([BIN], env=pool_env(stack, f"127.0.0.1:{port}", addresses), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        s.wait_until(lambda: proc.poll() is None and port_open(port), timeout=15, interval=0.1,
                     what=f"the TCP pool on {port} (log {log.name})")
        return port
    yield _start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def health_over_fastcgi(port: int) -> subprocess.CompletedProcess:
    params = {"REQUEST_METHOD": "GET", "DOCUMENT_URI": s.HEALTH, "REQUEST_URI": s.HEALTH,
              "QUERY_STRING": "", "SCRIPT_NAME": s.HEALTH, "REQUEST_ID": "worker-host-test",
              "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1"}
    return subprocess.run(["cgi-fcgi", "-bind", "-connect", f"127.0.0.1:{port}"], env=params,
                          capture_output=True, text=True, timeout=15)


def test_a_listed_web_server_is_answered(tcp_pool):
    port = tcp_pool("127.0.0.2,127.0.0.1")
    answer = health_over_fastcgi(port)
    assert answer.stdout.startswith("Status: 200"), (answer.returncode, answer.stdout, answer.stderr)
    assert '"database":"ok"' in answer.stdout


def test_an_unlisted_peer_is_closed_before_a_byte_is_read(tcp_pool):
    port = tcp_pool("127.0.0.2")
    for _ in range(3):  # the worker goes on accepting (and closing) after each refusal
        answer = health_over_fastcgi(port)
        assert "Status:" not in answer.stdout, answer.stdout
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.settimeout(5)
        raw.sendall(b"\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00")  # BEGIN_REQUEST
        try:
            answer = raw.recv(100)
        except ConnectionResetError:  # closed with our bytes unread: the kernel resets
            answer = b""
        assert answer == b"", "libfcgi answered a peer not on FCGI_WEB_SERVER_ADDRS"


@pytest.mark.parametrize("fcgi_socket", [":{port}", "0.0.0.0:{port}"])
def test_the_pool_refuses_to_listen_beyond_loopback_without_the_list(stack, fcgi_socket):
    env = pool_env(stack, fcgi_socket.format(port=free_port()), None)
    started = time.monotonic()
    result = subprocess.run([BIN], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "FCGI_WEB_SERVER_ADDRS is not set" in result.stdout + result.stderr, result.stdout + result.stderr
    assert time.monotonic() - started < 10
