"""Parse: the raw outputs bench/run.sh leaves in OUT_DIR (.bench-run/bench/out/<stamp>/), as read.

Per run NN-name:
    .meta         key=value: what ran (kind, conns, target, endpoint, tool, url, cache_ttl,
                  users, duration), when (t_start/t_end, epoch s), Postgres transaction
                  counters before/after, the access log byte range; token_from for ab
    .argv         the command as run, one argument per line (ab's token shown as $TOKEN)
    .out / .err   the tool's output: wrk's with bench/load.lua's LOAD_SUMMARY line, or ab's
    .access.json  the X-Cache values nginx logged for the run (`report.py count`)
    .before.json / .after.json   bench/sample.py: CPU ticks per process group, workers' RSS
and `environment` (key=value: the machine, versions, settings, log byte ranges).
Nothing here is changed by the later steps (compute.py, the renderers).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from reporting.summary import parse_summary


def read_meta(path) -> Mapping[str, str]:
    """A key=value file as a read-only mapping (later lines win)."""
    meta = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                meta[key] = value
    return MappingProxyType(meta)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# What the load tool reported

@dataclass(frozen=True)
class ToolResult:
    """One run's numbers as wrk (bench/load.lua) or ab reported them. Latencies in ms."""
    requests: int
    duration_s: float | None
    rps: float | None
    bytes_per_request: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None       # ab: its 100 % percentile
    mean_ms: float | None
    non2xx: int
    statuses: Mapping[int, int]          # wrk only: HTTP status -> responses
    client_x_cache: Mapping[str, int]    # wrk only: X-Cache value the client saw -> responses
    socket_errors: Mapping[str, int]     # connect/read/write/timeout (ab: + exceptions)
    ab_counts: Mapping[str, int] = field(default_factory=dict)   # ab only: ab_failed,
    #                                       ab_length_mismatch, keepalive_requests


def wrk_result(text: str) -> ToolResult | None:
    s = parse_summary(text)
    if s is None:
        return None
    return ToolResult(
        requests=s.requests, duration_s=s.duration_s, rps=s.rps,
        bytes_per_request=s.bytes / s.requests if s.requests else None,
        p50_ms=s.p50_ms, p90_ms=s.p90_ms, p99_ms=s.p99_ms, max_ms=s.max_ms, mean_ms=s.mean_ms,
        non2xx=s.non2xx, statuses=s.statuses, client_x_cache=s.x_cache,
        socket_errors=s.socket_errors)


def ab_result(text: str) -> ToolResult | None:
    def num(pattern, default=None, cast=float):
        m = re.search(pattern, text, re.M)
        return cast(m.group(1)) if m else default

    complete = num(r"^Complete requests:\s+(\d+)", cast=int)
    if complete is None:
        return None
    # ab's percentiles are whole milliseconds
    pct = {int(p): float(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\d+)", text, re.M)}
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", text)
    connect, receive, length, exceptions = (int(x) for x in m.groups()) if m else (0, 0, 0, 0)
    total_bytes = num(r"^Total transferred:\s+(\d+) bytes", 0, int)
    return ToolResult(
        requests=complete,
        duration_s=num(r"^Time taken for tests:\s+([\d.]+) seconds"),
        rps=num(r"^Requests per second:\s+([\d.]+)"),
        bytes_per_request=total_bytes / complete if complete else None,
        p50_ms=pct.get(50), p90_ms=pct.get(90), p99_ms=pct.get(99), max_ms=pct.get(100),
        mean_ms=num(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$"),
        non2xx=num(r"^Non-2xx responses:\s+(\d+)", 0, int),
        statuses={}, client_x_cache={},
        socket_errors={"connect": connect, "read": receive,
                       "write": num(r"^Write errors:\s+(\d+)", 0, int),
                       "timeout": 0, "exceptions": exceptions},
        ab_counts={"ab_failed": num(r"^Failed requests:\s+(\d+)", 0, int),
                   "ab_length_mismatch": length,
                   "keepalive_requests": num(r"^Keep-Alive requests:\s+(\d+)", 0, int)})


# ---------------------------------------------------------------------------------------------
# One run

@dataclass(frozen=True)
class Run:
    """One measured run as bench/run.sh left it. `result` is None when the tool printed no
    summary (`error` says why)."""
    meta: Mapping[str, str]
    argv: tuple[str, ...]
    result: ToolResult | None
    error: str | None
    access: Mapping | None    # X-Cache counts nginx logged: HIT MISS BYPASS none lines non200
    before: Mapping | None    # bench/sample.py snapshot before the run
    after: Mapping | None     # … and after

    id = property(lambda self: self.meta["id"])
    kind = property(lambda self: self.meta["kind"])          # mixed single uncached ceiling ab ab-ceiling soak
    target = property(lambda self: self.meta.get("target"))  # stack | ceiling
    endpoint = property(lambda self: self.meta.get("endpoint"))  # mixed status open guards
    tool = property(lambda self: self.meta.get("tool"))      # wrk | ab
    conns = property(lambda self: int(self.meta["conns"]))
    t_start = property(lambda self: float(self.meta["t_start"]))  # epoch s
    t_end = property(lambda self: float(self.meta["t_end"]))
    ok = property(lambda self: self.result is not None)

    @property
    def cache_ttl(self) -> int:
        """CACHE_TTL_SECONDS of the pool during the run (0: off or a ceiling run)."""
        ttl = self.meta.get("cache_ttl") or "-"
        return int(ttl) if ttl.isdigit() else 0


def read_run(meta_path) -> Run:
    meta = read_meta(meta_path)
    base = str(meta_path)[:-len(".meta")]
    text = read_text(base + ".out")
    result = wrk_result(text) if meta.get("tool") == "wrk" else ab_result(text)
    error = None
    if result is None:
        err = read_text(base + ".err").strip()[-300:]
        error = f"no summary in {base}.out (exit {meta.get('exit')}) {err}".strip()
    access = None
    if meta.get("target") == "stack":
        access = read_json(base + ".access.json") or access_log_counts(meta)
    return Run(meta=meta, argv=tuple(read_text(base + ".argv").splitlines()), result=result,
               error=error, access=access,
               before=read_json(base + ".before.json"), after=read_json(base + ".after.json"))


def read_runs(out_dir) -> tuple[Run, ...]:
    return tuple(read_run(p) for p in sorted(Path(out_dir).glob("*.meta")))


def read_environment(out_dir) -> Mapping[str, str]:
    path = Path(out_dir) / "environment"
    return read_meta(path) if path.exists() else MappingProxyType({})


# ---------------------------------------------------------------------------------------------
# nginx's access log (report.py count) and the stack's logs

CACHE_RE = re.compile(rb'"cache":"([A-Z]*)"')
STATUS_RE = re.compile(rb'"status":(\d+)')


def access_log_counts(meta) -> dict | None:
    """X-Cache values nginx logged ($upstream_http_x_cache) in the run's byte range:
    {"HIT", "MISS", "BYPASS", "none", "lines", "non200"} -> count; None when unreadable."""
    counts = {"HIT": 0, "MISS": 0, "BYPASS": 0, "none": 0, "lines": 0, "non200": 0}
    try:
        start, end = int(meta["access_from"]), int(meta["access_to"])
        with open(meta.get("access_log"), "rb") as f:
            f.seek(start)
            data = f.read(max(0, end - start))
    except (OSError, KeyError, ValueError, TypeError):
        return None
    for line in data.splitlines():
        if not line.strip():
            continue
        counts["lines"] += 1
        m = CACHE_RE.search(line)
        value = m.group(1).decode() if m else ""
        counts[value if value in ("HIT", "MISS", "BYPASS") else "none"] += 1
        s = STATUS_RE.search(line)
        if s and s.group(1) != b"200":
            counts["non200"] += 1
    return counts


@dataclass(frozen=True)
class LogFindings:
    """What the stack's own logs said during the benchmark (byte ranges in `environment`)."""
    recycled: int = 0                      # "exited cleanly … recycling" in pool.log
    pool_problems: tuple[str, ...] = ()    # warning/error/critical lines of pool.log
    nginx_problems: tuple[str, ...] = ()   # nginx-error.log lines above [notice]
    pg_slow: tuple[str, ...] = ()          # "duration:" lines of postgres.log
    pg_errors: tuple[str, ...] = ()        # ERROR/FATAL/PANIC lines of postgres.log


def read_log_range(env, name, file) -> list[str] | None:
    try:
        start, end = int(env[f"{name}_from"]), int(env[f"{name}_to"])
    except (KeyError, ValueError):
        return None
    try:
        with open(os.path.join(env["log_dir"], file), "rb") as f:
            f.seek(start)
            return f.read(max(0, end - start)).decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def read_log_findings(env) -> LogFindings | None:
    if not env.get("log_dir"):
        return None
    pool = read_log_range(env, "pool_log", "pool.log") or []
    nginx = read_log_range(env, "nginx_error_log", "nginx-error.log") or []
    postgres = read_log_range(env, "postgres_log", "postgres.log") or []

    def level(line):
        parts = line.split(" ", 2)
        return parts[1] if len(parts) > 1 else ""

    recycled = [l for l in pool if "exited cleanly" in l and "recycling" in l]
    return LogFindings(
        recycled=len(recycled),
        pool_problems=tuple(l for l in pool if l not in recycled
                            and level(l) in ("warning", "error", "critical")),
        nginx_problems=tuple(l for l in nginx if "[notice]" not in l and l.strip()),
        pg_slow=tuple(l for l in postgres if "duration:" in l),
        pg_errors=tuple(l for l in postgres if "duration:" not in l
                        and any(w in l for w in ("ERROR:", "FATAL:", "PANIC:"))))
