"""wrk as the load generator of the fault suite.

`Load(...)` runs wrk with bench/load.lua, the benchmark's driver: the (path, token) pairs it is
given go into a request list (bearer tokens of many users, so no single token comes near the
per-token rate limit), sent round-robin (LOAD_ORDER=cycle); the driver counts every status,
every X-Cache value and every socket error, keeps a few samples of non-2xx answers, and prints
its one LOAD_SUMMARY line, read by bench/reporting/summary.py. wrk's own summary lines
("Non-2xx or 3xx responses", "Socket errors") are parsed as a cross-check.

    with Load(stack.base_url, requests, duration=10, connections=64) as load:
        time.sleep(2); inject_fault()
    result = load.result          # LoadResult: requests, statuses, errors, p99 ...
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
from reporting.summary import parse_summary  # noqa: E402  (bench/reporting/summary.py)

WRK = os.environ.get("WRK", shutil.which("wrk") or "/usr/bin/wrk")
DRIVER = BENCH / "load.lua"


def request_lines(requests: list[tuple[str, str]]) -> str:
    """bench/load.lua's request list: one "PATH TOKEN" line per (path with query, token)."""
    for path, token in requests:
        assert re.fullmatch(r"[A-Za-z0-9._\-/?=&%]+", path) and re.fullmatch(r"\S+", token), (path, token)
    return "".join(f"{path} {token}\n" for path, token in requests)


@dataclass
class LoadResult:
    name: str
    requests: int
    duration_s: float
    statuses: dict[int, int]
    cache: dict[str, int]
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    samples: list[str]
    unavailable_json: int
    error_json: int
    wrk_non2xx: int | None = None
    wrk_socket_errors: dict[str, int] | None = None
    notes: dict = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(v for k, v in self.statuses.items() if 200 <= k < 300)

    @property
    def non2xx(self) -> int:
        return sum(v for k, v in self.statuses.items() if not 200 <= k < 300)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    @property
    def failed(self) -> int:
        """Everything a client would call a failure: non-2xx answers and socket errors."""
        return self.non2xx + self.socket_errors

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(s, 0) for s in statuses)

    def line(self) -> str:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        cache = " ".join(f"{k}:{v}" for k, v in sorted(self.cache.items()))
        errs = " ".join(f"{k}:{v}" for k, v in sorted(self.errors.items()) if k != "status" and v)
        return (f"{self.name}: {self.requests} requests in {self.duration_s:.1f}s "
                f"({self.rps:.0f}/s), non-2xx {self.non2xx}, socket errors {self.socket_errors}"
                f"{' (' + errs + ')' if errs else ''}, p50 {self.p50_ms:.1f} ms, "
                f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms; status [{codes}] "
                f"X-Cache [{cache}]")

    def describe(self) -> str:
        text = self.line()
        if self.notes:
            text += "\n  " + ", ".join(f"{k}={v}" for k, v in self.notes.items())
        if self.samples:
            text += "\n  e.g. " + " | ".join(x.strip()[:120] for x in self.samples[:2])
        return text


def _parse(name: str, stdout: str) -> LoadResult:
    summary = parse_summary(stdout)
    if summary is None:
        raise AssertionError(f"wrk printed no LOAD_SUMMARY line:\n{stdout[-3000:]}")
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", stdout)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    res = LoadResult(
        name=name,
        requests=summary.requests,
        duration_s=summary.duration_s,
        statuses=dict(summary.statuses),
        cache=dict(summary.x_cache),
        errors={**summary.socket_errors, "status": summary.wrk_status_errors},
        p50_ms=summary.p50_ms, p99_ms=summary.p99_ms, max_ms=summary.max_ms,
        samples=list(summary.samples),
        unavailable_json=summary.unavailable_json,
        error_json=summary.error_json,
        wrk_non2xx=int(m.group(1)) if m else 0,
        wrk_socket_errors=dict(zip(("connect", "read", "write", "timeout"),
                                   map(int, sock.groups()))) if sock else {},
    )
    # The Lua counts and wrk's own lines must agree (non-2xx: wrk counts status > 399).
    lua_over_399 = sum(v for k, v in res.statuses.items() if k > 399)
    assert res.wrk_non2xx == lua_over_399, (res.wrk_non2xx, res.statuses)
    return res


class Load:
    """Runs wrk in the background for `duration` seconds (bounded: wrk is killed after
    duration + 30 s). Use as a context manager; `result` is set on exit."""

    def __init__(self, base_url: str, requests: list[tuple[str, str]], *, name: str,
                 duration: float = 10, connections: int = 64, threads: int = 2,
                 timeout: float = 10, close: bool = False):
        self.name = name
        self.duration = duration
        fd, self.requests_file = tempfile.mkstemp(prefix="faults-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(request_lines(requests))
        self.env = dict(os.environ, LOAD_REQUESTS=self.requests_file, LOAD_ORDER="cycle",
                        LOAD_CLOSE="1" if close else "0")
        self.cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s",
                    f"--timeout={int(timeout)}s", "--latency", "-s", str(DRIVER),
                    base_url.rstrip("/") + "/api/v1/health"]
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.result: LoadResult | None = None

    def __enter__(self) -> "Load":
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self.started = time.monotonic()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sleep_until(self, t: float) -> None:
        """Sleeps until `t` seconds after wrk started."""
        time.sleep(max(0.0, t - self.elapsed()))

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        try:
            out, _ = self.proc.communicate(timeout=self.duration + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError(f"wrk did not finish within {self.duration + 30:.0f}s")
        finally:
            try:
                os.unlink(self.requests_file)
            except OSError:
                pass
        if exc[0] is None:
            assert self.proc.returncode == 0, f"wrk exited {self.proc.returncode}: {out[-2000:]}"
            self.result = _parse(self.name, out)
