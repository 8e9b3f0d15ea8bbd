"""Render: the report's tables and the progress line of one run (markdown)."""
from __future__ import annotations

from reporting.compute import Measured
from reporting.fmt import f_ms, f_num, f_pct, f_sock

LABELS = {
    "ceiling": "ceiling (nginx `return 200`, 1 KB)",
    "mixed": "mixed, cached",
    "single": "{endpoint} only, cached",
    "uncached": "mixed, **uncached** (TTL 0)",
    "ab": "ab -k: {endpoint}, one user, cached",
    "ab-ceiling": "ab -k: ceiling",
    "soak": "soak window",
}
ENDPOINT_NAMES = {"status": "reconciliation/status", "open": "positions/open",
                  "guards": "guards/status", "mixed": "mixed"}


def label(run) -> str:
    return LABELS.get(run.kind, run.kind).format(endpoint=ENDPOINT_NAMES.get(run.endpoint, run.endpoint))


def progress_line(m: Measured) -> str:
    run, r, fig = m.run, m.run.result, m.fig
    if r is None:
        return f"[bench] {run.id}: FAILED: {run.error}"
    parts = [f"{run.id}: {f_num(r.rps)} req/s", f"p50 {f_ms(r.p50_ms)} ms",
             f"p99 {f_ms(r.p99_ms)} ms", f"max {f_ms(r.max_ms)} ms",
             f"non-2xx {r.non2xx}", f"socket errors {f_sock(r.socket_errors)}"]
    if fig.cache_hit_ratio is not None:
        parts.append(f"hit {f_pct(fig.cache_hit_ratio)}")
    if run.target == "stack" and fig.pg_tps is not None:
        parts.append(f"PG {f_num(fig.pg_tps)} xact/s")
    if run.target == "stack" and fig.rss_max_mb is not None:
        parts.append(f"RSS max {fig.rss_max_mb:.1f} MB")
    return "[bench] " + ", ".join(parts)


def row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main_table(measured) -> str:
    out = ["| run | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors c/r/w/t "
           "| % of ceiling | cache hit | PG xact/s | worker RSS MB (max) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in measured:
        run, r, fig = m.run, m.run.result, m.fig
        if r is None:
            out.append(f"| {label(run)} | {run.conns} | failed: {(run.error or '')[:80]} |" + " |" * 10)
            continue
        stack = run.target == "stack"
        ceiling = "100 %" if run.kind in ("ceiling", "ab-ceiling") else "–"
        out.append(row([
            label(run), run.conns, f_num(r.rps), f_ms(r.p50_ms), f_ms(r.p90_ms), f_ms(r.p99_ms),
            f_ms(r.max_ms), r.non2xx, f_sock(r.socket_errors),
            f_pct(fig.ceiling_ratio) if stack else ceiling,
            f_pct(fig.cache_hit_ratio) if stack else "–",
            f_num(fig.pg_tps) if stack else "–",
            f_num(fig.rss_max_mb, 1) if stack else "–"]))
    return "\n".join(out) + "\n"


def targets_table(targets) -> str:
    out = ["| target | measured | result |", "|---|---|---|"]
    out += [row([t.name, t.measured, "**pass**" if t.passed else "**FAIL**"]) for t in targets]
    return "\n".join(out) + "\n"


CPU_COLUMNS = ("machine", "nginx", "pool", "postgres", "memcached", "ceiling", "bench", "other")


def cpu_table(measured) -> str:
    out = ["| run | conns | machine busy | nginx | trading-api workers | postgres | memcached "
           "| ceiling nginx | wrk / ab | other processes |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in measured:
        cores = m.fig.cpu_cores if m.fig else None
        if cores:
            out.append(row([label(m.run), m.run.conns] + [f_num(cores.get(k), 2) for k in CPU_COLUMNS]))
    return "\n".join(out) + "\n"


CPU_PER_REQUEST_COLUMNS = ("nginx", "pool", "memcached", "postgres", "bench", "machine")


def cpu_per_request_table(measured) -> str:
    """CPU µs per request of each component, for the stack's runs."""
    out = ["| run | conns | req/s | nginx | trading-api workers | memcached | postgres | wrk / ab "
           "| whole machine |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in measured:
        per = m.fig.cpu_us_per_request if m.fig else None
        if per and m.run.target == "stack":
            out.append(row([label(m.run), m.run.conns, f_num(m.run.result.rps)]
                           + [f_num(per.get(k)) for k in CPU_PER_REQUEST_COLUMNS]))
    return "\n".join(out) + "\n"


def each_rss(workers) -> str:
    return " ".join(f"{w.rss_mb:.1f}" for w in workers or ())


def detail_table(measured) -> str:
    out = ["| run | requests | bytes/resp | X-Cache logged HIT/MISS/BYPASS | PG xact/request | "
           "workers replaced during run | each worker's RSS MB after |",
           "|---|---:|---:|---|---:|---:|---|"]
    for m in measured:
        run, r, fig = m.run, m.run.result, m.fig
        if r is None or run.target != "stack":
            continue
        al = run.access
        logged = f"{al.get('HIT', 0)}/{al.get('MISS', 0)}/{al.get('BYPASS', 0)}" if al else "–"
        out.append(row([run.id, f"{r.requests:,}", f_num(r.bytes_per_request), logged,
                        f_num(fig.pg_xacts_per_request, 3), f_num(fig.workers_replaced),
                        each_rss(fig.workers)]))
    return "\n".join(out) + "\n"


def soak_table(soak) -> str:
    out = ["| t (s) | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors c/r/w/t | cache hit "
           "| PG xact/s | workers replaced | each worker's RSS MB |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    t0 = soak.windows[0].run.t_start
    for m in soak.windows:
        r, fig = m.run.result, m.fig
        out.append(row([f"{m.run.t_end - t0:.0f}", f_num(r.rps), f_ms(r.p50_ms), f_ms(r.p99_ms),
                        f_ms(r.max_ms), r.non2xx, f_sock(r.socket_errors), f_pct(fig.cache_hit_ratio),
                        f_num(fig.pg_tps), f_num(fig.workers_replaced), each_rss(fig.workers)]))
    return "\n".join(out) + "\n"
