"""Compute: what the raw records of raw.py add up to, in new frozen objects (the records stay
as read). Per run: errors, Postgres transactions, cache hit ratio, CPU per process group,
workers' RSS, the ratio to the ceiling and the Postgres bound; for a soak: its summary."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

from reporting.raw import Run

# Each view is one prepared statement, its own (autocommit) transaction: status_view,
# positions_open, guards_view (Sources/TradingAPI/Views).
XACTS_PER_RECOMPUTE = 1
VIEWS = {"mixed": 3, "status": 1, "open": 1, "guards": 1}   # views an endpoint setting covers


@dataclass(frozen=True)
class Worker:
    pid: int
    start: int        # start time in clock ticks since boot (pid + start: one process)
    rss_mb: float

    @property
    def key(self) -> tuple[int, int]:
        """One process: a pid is reused, pid and start time are not."""
        return self.pid, self.start


@dataclass(frozen=True)
class PgBound:
    """At most one recompute per user, view and TTL: in a run of D s an entry with TTL T
    expires at most ⌊D/T⌋+1 times (the +1: the entries of the warm-up expire during the
    run), so xact/s ≤ users × views × (⌊D/T⌋+1) × XACTS_PER_RECOMPUTE / D."""
    users: int
    views: int
    expiries: int
    duration_s: float
    xact_per_s: float


@dataclass(frozen=True)
class Figures:
    """Derived from one run with a summary. None where the run has no such number."""
    socket_errors_total: int
    errors_total: int                     # socket errors + non-2xx
    pg_xacts: int | None                  # Postgres transactions in the run (health checks subtracted)
    pg_tps: float | None                  # … per second of the run
    pg_xacts_per_request: float | None
    cache_hit_ratio: float | None         # HIT / (HIT + MISS + BYPASS) of nginx's log (stack runs)
    recomputes_per_s: float | None        # (MISS + BYPASS) / s
    cpu_cores: Mapping[str, float] | None  # process group (+ "machine", "other") -> cores used
    cpu_us_per_request: Mapping[str, float] | None  # the same groups -> CPU µs per request
    kernel_share: Mapping[str, float] | None  # process group -> the part of its CPU in the kernel
    switches_per_request: float | None    # the machine's context switches (/proc/stat ctxt) per request
    workers: tuple[Worker, ...] | None    # after the run
    workers_before: tuple[Worker, ...] | None
    rss_max_mb: float | None
    workers_replaced: int | None          # workers after the run that were not there before
    supervisor_rss_mb: float | None
    pg_bound: PgBound | None              # cached stack runs of wrk
    ceiling_rps: float | None = None      # the ceiling at the same conns with the same tool
    ceiling_ratio: float | None = None


@dataclass(frozen=True)
class Measured:
    """A run and what it adds up to (`fig` is None when the run has no summary)."""
    run: Run
    fig: Figures | None


def pg_transactions(run: Run, duration: float):
    """(transactions, per second, per request), minus the health checks of run.sh's pg_nudge."""
    m, requests = run.meta, run.result.requests
    try:
        xacts = max(0, int(m["xacts_after"]) - int(m["xacts_before"]) - int(m.get("xacts_nudge") or 0))
    except (KeyError, ValueError):
        return None, None, None
    return xacts, xacts / duration, xacts / requests if requests else None


def ticks(group) -> int:
    """A group's CPU clock ticks in a snapshot: its live processes' and what its root reaped."""
    return sum(group.get("live", {}).values()) + group.get("reaped", 0)


def cpu_shares(before, after, seconds) -> dict | None:
    """Cores used by each process group between two snapshots, the whole machine
    ("machine") and what no group accounts for ("other")."""
    if not before or not after or not seconds:
        return None

    tck = after.get("clk_tck", 100)
    out = {}
    for name, group_after in after.get("groups", {}).items():
        group_before = before.get("groups", {}).get(name)
        if group_before is not None:
            out[name] = max(0, ticks(group_after) - ticks(group_before)) / tck / seconds
    total = after["cpu"]["total"] - before["cpu"]["total"]
    idle = after["cpu"]["idle"] - before["cpu"]["idle"]
    machine = (total - idle) / total * (after.get("ncpu") or 1) if total > 0 else None
    known = sum(out.values())
    out["machine"] = machine
    out["other"] = max(0.0, machine - known) if machine is not None else None
    return out


def kernel_shares(before, after) -> dict | None:
    """The part of each group's CPU between two snapshots spent in the kernel (stime ÷
    utime+stime): system calls, the socket work between processes, waking them."""
    if not before or not after:
        return None
    out = {}
    for name, a in after.get("groups", {}).items():
        b = before.get("groups", {}).get(name)
        if b is None or "live_kernel" not in a or "live_kernel" not in b:
            continue
        total = ticks(a) - ticks(b)
        kernel = a["live_kernel"] + a["reaped_kernel"] - b["live_kernel"] - b["reaped_kernel"]
        if total > 0:
            out[name] = min(1.0, max(0.0, kernel / total))
    return out or None


def switches_per_request(before, after, requests) -> float | None:
    """The whole machine's context switches during the run per request (every process, the
    client included)."""
    try:
        switches = after["cpu"]["ctxt"] - before["cpu"]["ctxt"]
    except (KeyError, TypeError):
        return None
    return switches / requests if requests else None


def workers_of(snapshot) -> tuple[Worker, ...] | None:
    if not snapshot or not snapshot.get("workers"):
        return None
    return tuple(Worker(w["pid"], w["start"], (w["rss_kb"] or 0) / 1024) for w in snapshot["workers"])


def replaced(after, before) -> int:
    """Workers after the run that were not there before it (recycled or crashed)."""
    return len({w.key for w in after} - {w.key for w in before or ()})


def pg_bound(run: Run) -> PgBound | None:
    r = run.result
    if run.kind not in ("mixed", "single") or run.cache_ttl <= 0 or not r.duration_s:
        return None
    users = int(run.meta["users"])
    views = VIEWS.get(run.endpoint, 3)
    expiries = math.floor(r.duration_s / run.cache_ttl) + 1
    return PgBound(users, views, expiries, r.duration_s,
                   users * views * expiries * XACTS_PER_RECOMPUTE / r.duration_s)


def cpu_per_request(cores: Mapping[str, float] | None, rps: float | None) -> Mapping[str, float] | None:
    """Cores used ÷ requests per second = CPU µs per request, per process group: a cost that
    compares across machines, where ratios to the ceiling and req/s do not."""
    if not cores or not rps:
        return None
    return {group: used * 1e6 / rps for group, used in cores.items()}


def figures(run: Run) -> Figures | None:
    """One run's figures (without the ceiling ratio: measure_all); None without a summary."""
    r = run.result
    if r is None:
        return None
    socket_total = sum(r.socket_errors.get(k, 0) for k in ("connect", "read", "write", "timeout", "exceptions"))
    duration = r.duration_s or (run.t_end - run.t_start)
    xacts, tps, per_request = pg_transactions(run, duration)
    hit_ratio = recomputes = None
    if run.access:
        looked_up = run.access["HIT"] + run.access["MISS"] + run.access["BYPASS"]
        hit_ratio = run.access["HIT"] / looked_up if looked_up else None
        recomputes = (run.access["MISS"] + run.access["BYPASS"]) / duration
    after, before = workers_of(run.after), workers_of(run.before)
    cores = cpu_shares(run.before, run.after, run.t_end - run.t_start)
    return Figures(
        socket_errors_total=socket_total, errors_total=socket_total + (r.non2xx or 0),
        pg_xacts=xacts, pg_tps=tps, pg_xacts_per_request=per_request,
        cache_hit_ratio=hit_ratio, recomputes_per_s=recomputes,
        cpu_cores=cores, cpu_us_per_request=cpu_per_request(cores, r.rps),
        kernel_share=kernel_shares(run.before, run.after),
        switches_per_request=switches_per_request(run.before, run.after, r.requests),
        workers=after, workers_before=before,
        rss_max_mb=max(w.rss_mb for w in after) if after else None,
        workers_replaced=replaced(after, before) if after and run.before else None,
        supervisor_rss_mb=(run.after.get("supervisor_rss_kb") or 0) / 1024 if after else None,
        pg_bound=pg_bound(run) if tps is not None else None)


def ceiling_of(run: Run, runs) -> Run | None:
    """The ceiling a stack run is compared with: same conns, same tool."""
    kind = "ab-ceiling" if run.kind == "ab" else "ceiling"
    found = [c for c in runs if c.ok and c.kind == kind and c.conns == run.conns]
    return found[-1] if found else None


def measure_all(runs) -> tuple[Measured, ...]:
    """Every run with its figures, stack runs with their ratio to the ceiling."""
    out = []
    for run in runs:
        fig = figures(run)
        ceiling = ceiling_of(run, runs) if fig and run.kind not in ("ceiling", "ab-ceiling") else None
        if ceiling and ceiling.result.rps:
            fig = dataclasses.replace(fig, ceiling_rps=ceiling.result.rps,
                                      ceiling_ratio=run.result.rps / ceiling.result.rps)
        out.append(Measured(run, fig))
    return tuple(out)


@dataclass(frozen=True)
class SoakSummary:
    windows: tuple[Measured, ...]   # the soak windows with a summary, in order
    conns: int
    window_s: str                   # SOAK_WINDOW as recorded
    requests: int
    errors: int
    rss_max_mb: float
    growth_mb: tuple[float, ...]    # RSS growth of each worker that lived through the whole soak
    replaced: int                   # workers replaced during the soak
    p99_median_ms: float
    p99_worst_ms: float


def soak_summary(measured, env) -> SoakSummary | None:
    windows = tuple(m for m in measured if m.run.kind == "soak" and m.fig)
    if not windows:
        return None
    first, last = windows[0].fig, windows[-1].fig
    rss_first = {w.key: w.rss_mb for w in first.workers_before or first.workers or ()}
    growth = tuple(w.rss_mb - rss_first[w.key] for w in last.workers or () if w.key in rss_first)
    p99s = sorted(m.run.result.p99_ms for m in windows)
    return SoakSummary(
        windows=windows, conns=windows[0].run.conns, window_s=env.get("soak_window", "10"),
        requests=sum(m.run.result.requests for m in windows),
        errors=sum(m.fig.errors_total for m in windows),
        rss_max_mb=max(m.fig.rss_max_mb or 0 for m in windows),
        growth_mb=growth, replaced=sum(m.fig.workers_replaced or 0 for m in windows),
        p99_median_ms=p99s[len(p99s) // 2], p99_worst_ms=p99s[-1])
