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
    "streams": "mixed, cached, with the live streams open",
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


def table(columns, rows) -> str:
    """A markdown table. `columns`: (title, "<" left- or ">" right-aligned) pairs; `rows`: lists of
    cells, or a row already rendered as text."""
    lines = [row(title for title, _ in columns),
             "|" + "|".join("---" if align == "<" else "---:" for _, align in columns) + "|"]
    lines += [r if isinstance(r, str) else row(r) for r in rows]
    return "\n".join(lines) + "\n"


MAIN_COLUMNS = [("run", "<"), ("conns", ">"), ("req/s", ">"), ("p50 ms", ">"), ("p90 ms", ">"),
                ("p99 ms", ">"), ("max ms", ">"), ("non-2xx", ">"), ("socket errors c/r/w/t", ">"),
                ("% of ceiling", ">"), ("cache hit", ">"), ("PG xact/s", ">"), ("worker RSS MB (max)", ">")]


def main_table(measured) -> str:
    rows = []
    for m in measured:
        run, r, fig = m.run, m.run.result, m.fig
        if r is None:
            rows.append(f"| {label(run)} | {run.conns} | failed: {(run.error or '')[:80]} |" + " |" * 10)
            continue
        stack = run.target == "stack"
        ceiling = "100 %" if run.kind in ("ceiling", "ab-ceiling") else "–"
        rows.append([
            label(run), run.conns, f_num(r.rps), f_ms(r.p50_ms), f_ms(r.p90_ms), f_ms(r.p99_ms),
            f_ms(r.max_ms), r.non2xx, f_sock(r.socket_errors),
            f_pct(fig.ceiling_ratio) if stack else ceiling,
            f_pct(fig.cache_hit_ratio) if stack else "–",
            f_num(fig.pg_tps) if stack else "–",
            f_num(fig.rss_max_mb, 1) if stack else "–"])
    return table(MAIN_COLUMNS, rows)


def targets_table(targets) -> str:
    return table([("target", "<"), ("measured", "<"), ("result", "<")],
                 [[t.name, t.measured, "**pass**" if t.passed else "**FAIL**"] for t in targets])


# (process group in Figures.cpu_cores, column title)
CPU_COLUMNS = [("machine", "machine busy"), ("nginx", "nginx"), ("pool", "trading-api workers"),
               ("postgres", "postgres"), ("memcached", "memcached"), ("ceiling", "ceiling nginx"),
               ("bench", "wrk / ab"), ("other", "other processes")]


def cpu_table(measured) -> str:
    columns = [("run", "<"), ("conns", ">")] + [(title, ">") for _, title in CPU_COLUMNS]
    return table(columns, [[label(m.run), m.run.conns] + [f_num(m.fig.cpu_cores.get(k), 2) for k, _ in CPU_COLUMNS]
                           for m in measured if m.fig and m.fig.cpu_cores])


CPU_PER_REQUEST_COLUMNS = [("nginx", "nginx"), ("pool", "trading-api workers"), ("memcached", "memcached"),
                           ("postgres", "postgres"), ("bench", "wrk / ab"), ("machine", "whole machine")]


def with_kernel(us, share) -> str:
    """CPU µs with the part of it in the kernel: `37 (61 %)`; no part of less than a µs (a
    tick or two: its split means nothing)."""
    return f_num(us) if us is None or share is None or us < 0.5 else f"{f_num(us)} ({100 * share:.0f} %)"


def cpu_per_request_table(measured) -> str:
    """CPU µs per request of each component (in brackets the part in the kernel), and the
    machine's context switches per request, for the stack's runs."""
    columns = ([("run", "<"), ("conns", ">"), ("req/s", ">")] + [(title, ">") for _, title in CPU_PER_REQUEST_COLUMNS]
               + [("context switches", ">")])
    rows = []
    for m in measured:
        if not (m.fig and m.fig.cpu_us_per_request and m.run.target == "stack"):
            continue
        shares = m.fig.kernel_share or {}
        rows.append([label(m.run), m.run.conns, f_num(m.run.result.rps)]
                    + [with_kernel(m.fig.cpu_us_per_request.get(k), shares.get(k)) for k, _ in CPU_PER_REQUEST_COLUMNS]
                    + [f_num(m.fig.switches_per_request, 1)])
    return table(columns, rows)


def each_rss(workers) -> str:
    return " ".join(f"{w.rss_mb:.1f}" for w in workers or ())


DETAIL_COLUMNS = [("run", "<"), ("requests", ">"), ("bytes/resp", ">"), ("X-Cache logged HIT/MISS/BYPASS", "<"),
                  ("PG xact/request", ">"), ("workers replaced during run", ">"), ("each worker's RSS MB after", "<")]


def detail_table(measured) -> str:
    rows = []
    for m in measured:
        run, r, fig = m.run, m.run.result, m.fig
        if r is None or run.target != "stack":
            continue
        al = run.access
        logged = f"{al.get('HIT', 0)}/{al.get('MISS', 0)}/{al.get('BYPASS', 0)}" if al else "–"
        rows.append([run.id, f"{r.requests:,}", f_num(r.bytes_per_request), logged,
                     f_num(fig.pg_xacts_per_request, 3), f_num(fig.workers_replaced), each_rss(fig.workers)])
    return table(DETAIL_COLUMNS, rows)


SOAK_COLUMNS = [("t (s)", ">"), ("req/s", ">"), ("p50 ms", ">"), ("p99 ms", ">"), ("max ms", ">"),
                ("non-2xx", ">"), ("socket errors c/r/w/t", ">"), ("cache hit", ">"), ("PG xact/s", ">"),
                ("workers replaced", ">"), ("each worker's RSS MB", "<")]


def soak_table(soak) -> str:
    t0 = soak.windows[0].run.t_start
    return table(SOAK_COLUMNS, [
        [f"{m.run.t_end - t0:.0f}", f_num(m.run.result.rps), f_ms(m.run.result.p50_ms), f_ms(m.run.result.p99_ms),
         f_ms(m.run.result.max_ms), m.run.result.non2xx, f_sock(m.run.result.socket_errors),
         f_pct(m.fig.cache_hit_ratio), f_num(m.fig.pg_tps), f_num(m.fig.workers_replaced), each_rss(m.fig.workers)]
        for m in soak.windows])
