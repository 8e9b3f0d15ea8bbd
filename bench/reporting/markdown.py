"""Render: the report's prose sections and the two documents (suite, soak) as markdown."""
from __future__ import annotations

import shlex

from reporting.fmt import f_sock
from reporting.tables import (cpu_per_request_table, cpu_table, detail_table, main_table, soak_table,
                              targets_table)
from reporting.targets import RSS_MB

# A run during which other processes used this many cores or more is flagged.
NEIGHBOUR_CORES = 0.2


# ---------------------------------------------------------------------------------------------
# Exact commands and the environment

def shell_word(arg: str) -> str:
    """An argument as pasted into a shell: with $TOKEN in double quotes (so it expands)."""
    return f'"{arg}"' if "$TOKEN" in arg else shlex.quote(arg)


def command_line(run) -> str:
    """The command that ran (NN-name.argv); ab's token is read from where run.sh read it."""
    line = " ".join(shell_word(a) for a in run.argv)
    token_from = run.meta.get("token_from")
    return f"TOKEN=$({token_from}); {line}" if token_from else line


def commands_section(runs, env, raw_dir: str) -> str:
    warm = env.get("warmup", "5")
    lines = [
        "The stack (scripts/stack.sh, state in `.bench-run/`):\n",
        "```sh",
        f"{env.get('stack_settings', '?')} \\\n"
        f"  CACHE_TTL_SECONDS={env.get('cache_ttl', 5)} scripts/stack.sh up     "
        "# CACHE_TTL_SECONDS=0 for the uncached run, then back",
        f"scripts/generate-data.sh {env.get('users')} {env.get('rows_per_user')}   "
        "# DATABASE_URL from .bench-run/stack.env; skipped when already loaded",
        f"JWT_SECRET_KEY=… bench/make_tokens.py {env.get('users')} .bench-run/bench/tokens.txt "
        f"--ttl {env.get('token_ttl', '?')}",
        f"{env.get('ceiling_command', '?')}   # rendered from bench/ceiling-nginx.conf",
        "```\n",
        f"Each run, after a {warm}-s warm-up with the same command and `-d{warm}s`/`-t {warm}` "
        "(not counted), is exactly (under `timeout -k 5` with 30 s to spare):\n",
        "```sh",
    ]
    for run in runs:
        if run.argv:
            lines += [f"# {run.id}", command_line(run)]
    lines += [
        "```\n",
        "Around each run: `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE "
        "datname = 'trading'` (as postgres, over the stack's socket) before and after; "
        "the X-Cache values nginx logged (`\"cache\"` in `.bench-run/logs/nginx-access.log`, "
        "truncated before the run); bench/sample.py (CPU ticks, each worker's VmRSS) "
        f"before and after. Raw outputs: `{raw_dir}/`.\n",
    ]
    return "\n".join(lines)


ENVIRONMENT_ROWS = [
    ("date", "started (UTC)"), ("finished", "finished (UTC)"), ("host_cpus", "CPUs"),
    ("cpu_model", "CPU"), ("mem_total", "memory"), ("kernel", "kernel"), ("nginx", "nginx"),
    ("wrk", "wrk"), ("ab", "ab"), ("postgres", "Postgres"), ("memcached", "memcached"),
    ("git_head", "git HEAD"), ("git_dirty_sources", "uncommitted files under Sources/"),
    ("binary", "binary"), ("binary_built", "binary built"), ("binary_sha256", "binary sha256 (12)"),
    ("workers", "WORKERS"), ("fcgi_loops", "FCGI_LOOPS"), ("max_requests", "MAX_REQUESTS"), ("cache_ttl", "CACHE_TTL_SECONDS"),
    ("dataset", "dataset"), ("threads", "wrk threads"), ("duration", "seconds per run"),
    ("warmup", "warm-up seconds"), ("ports", "ports"), ("loadavg_start", "load average at start"),
    ("loadavg_end", "load average at end"),
    ("busy_before", "machine busy in the 2 s before the first run"),
]


def environment_section(env) -> str:
    out = "| | |\n|---|---|\n"
    for key, name in ENVIRONMENT_ROWS:
        if env.get(key):
            out += f"| {name} | {env[key].replace('|', '/')} |\n"
    return out


# ---------------------------------------------------------------------------------------------
# Anything odd

def log_notes(logs, env) -> list[str]:
    if not logs:
        return []
    notes = []
    if logs.recycled:
        notes.append(f"- Workers recycled {logs.recycled} times during the benchmark (pool.log: "
                     f"\"exited cleanly … recycling\", MAX_REQUESTS={env.get('max_requests')}); "
                     "each recycle is a new process, a new Postgres connection and re-prepared "
                     "statements.")
    for lines, what in ((logs.pool_problems, "warnings/errors in pool.log"),
                        (logs.nginx_problems, "lines above [notice] in nginx-error.log"),
                        (logs.pg_errors, "ERROR/FATAL lines in postgres.log"),
                        (logs.pg_slow, "statements of 500 ms or more in postgres.log "
                                       "(log_min_duration_statement)")):
        if lines:
            sample = "; ".join(f"`{l.strip()[:160]}`" for l in lines[:3])
            notes.append(f"- {len(lines)} {what}, e.g. {sample}")
    return notes


def run_notes(m) -> list[str]:
    run, r, fig = m.run, m.run.result, m.fig
    if r is None:
        return [f"- `{run.id}` produced no summary: {run.error}"]
    notes = []
    if fig.errors_total:
        odd = " ".join(f"{k}:{v}" for k, v in sorted(r.statuses.items()) if not 200 <= k < 300)
        notes.append(f"- `{run.id}`: {r.non2xx} non-2xx{f' ({odd})' if odd else ''} and socket errors "
                     f"{f_sock(r.socket_errors)} (connect/read/write/timeout).")
    al = run.access
    if al and run.kind in ("mixed", "single", "ab", "soak") and al.get("BYPASS"):
        notes.append(f"- `{run.id}`: {al['BYPASS']} `X-Cache: BYPASS` with caching on: a memcached "
                     "call failed or timed out (MEMCACHED_TIMEOUT_MS, default 20 ms) and the worker "
                     "went to Postgres.")
    if al and run.tool == "wrk" and r.requests and abs(al["lines"] - r.requests) > max(50, 0.02 * r.requests):
        notes.append(f"- `{run.id}`: nginx logged {al['lines']:,} lines for {r.requests:,} "
                     "requests wrk counted (wrk counts completed responses only; a gap hints at "
                     "requests cut off at the end or lines of a neighbouring run).")
    return notes


def neighbour_note(measured) -> list[str]:
    busy = [(m.run.id, m.fig.cpu_cores["other"]) for m in measured
            if m.fig and m.fig.cpu_cores and (m.fig.cpu_cores.get("other") or 0) >= NEIGHBOUR_CORES]
    if not busy:
        return []
    return [f"- Other processes on the machine (not this benchmark) used ≥ {NEIGHBOUR_CORES} cores "
            "during " + ", ".join(f"`{i}` ({o:.2f})" for i, o in busy) + ": those runs had less "
            "than the whole machine, and their ratio to a ceiling measured under different "
            "neighbours is off too. Compare runs with ~0 \"other processes\" (CPU table), or "
            "run again on a quiet machine."]


def notes_section(measured, env, logs) -> str:
    notes = log_notes(logs, env)
    for m in measured:
        notes += run_notes(m)
    notes += neighbour_note(measured)
    return "\n".join(notes) + ("\n" if notes else "")


# ---------------------------------------------------------------------------------------------
# The documents

def suite_intro(env, targets) -> str:
    passed = sum(t.passed for t in targets)
    return (f"`make bench`: wrk -t{env.get('threads', '?')}, {env.get('duration', '?')} s per run after a "
            f"{env.get('warmup', '?')}-s warm-up, on {env.get('host_cpus', '?')} CPUs shared by wrk, nginx, the "
            f"{env.get('workers', '?')} workers, Postgres and memcached, and whatever else ran (before the "
            f"first run: {env.get('busy_before', '?')}; per run: \"other processes\" in the CPU table). "
            f"Dataset: {env.get('dataset', '?')}. "
            f"Targets: {passed} of {len(targets)} pass.\n\n"
            "Columns: see [bench/README.md](../README.md#what-the-columns-mean). Cache hit ratio: the "
            "`X-Cache` values nginx logged for the run's requests (`$upstream_http_x_cache`), "
            "HIT / (HIT + MISS + BYPASS). Socket errors: connect/read/write/timeout (wrk's 2-s timeout).\n\n")


CPU_PER_REQUEST_NOTE = ("Cores each part used during the run ÷ requests per second: what one request "
                        "costs each component, comparable across machines (bench/README.md). In brackets "
                        "the part of it spent in the kernel (system time: system calls, moving bytes "
                        "between the processes, waking them); context switches are the whole "
                        "machine's per request.\n\n")


def freshness_section(fresh) -> str:
    """bench/freshness.py's figures (issue 9) with their targets."""
    inv, ing, st = fresh["invalidation"], fresh["ingest"], fresh["stampede"]
    rows = [
        ("commit straight into Postgres → fresh view through nginx, p50 / p99 / max "
         f"({inv['trials']} trials)", f"{inv['p50_ms']} / {inv['p99_ms']} / {inv['max_ms']} ms",
         "p99 ≤ 100 ms", inv["p99_ms"] <= 100),
        (f"ingest, 1,000-event batches, {ing['concurrency']} clients for {ing['seconds']} s "
         f"({ing['failed_batches']} failed batches)", f"{ing['rows_per_s']:,} rows/s", "≥ 20,000 rows/s",
         ing["rows_per_s"] >= 20_000 and ing["failed_batches"] == 0),
        (f"recomputes per invalidation of a hot view under {st['concurrent']} concurrent requests "
         f"({st['rounds']} rounds)", " / ".join(str(n) for n in st["recomputes"]), "≤ 2", st["max"] <= 2),
    ]
    lines = ["| figure | measured | target | result |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {target} | {'**pass**' if ok else '**FAIL**'} |" for name, value, target, ok in rows]
    return ("Measured by bench/freshness.py after the suite, on its own users (their rows are "
            "deleted afterwards).\n\n" + "\n".join(lines) + "\n")


def live_section(live, measured) -> str:
    """bench/live.py's figures (issue 11) with their targets; the cached API with the streams open
    against the same workload without them, in this run."""
    def req_s(kind):
        found = [m for m in measured if m.fig and m.run.kind == kind and m.run.conns == 100 and m.run.endpoint == "mixed"]
        return found[0].run.result.rps if found else None
    without, with_streams = req_s("mixed"), req_s("streams")
    delay = live["delay"]
    rows = [
        (f"streams held open ({live['failed']} failed to open, {live['open_seconds']} s to open them)",
         f"{live['opened']:,}", f"{live['subscribers']:,}", live["opened"] >= live["subscribers"] and live["failed"] == 0),
        ("nginx resident memory, before / with the streams (per stream)",
         f"{live['nginx_rss_mb_before']} / {live['nginx_rss_mb_with_streams']} MB ({live['nginx_kb_per_stream']} kB)",
         "reported", True),
        (f"commit straight into Postgres → `changed` event at the subscriber, p50 / p99 / max "
         f"({delay['trials']} trials, with the streams open)",
         f"{delay['p50_ms']} / {delay['p99_ms']} / {delay['max_ms']} ms", "p99 ≤ 100 ms", delay["p99_ms"] <= 100),
    ]
    if without and with_streams:
        rows.append(("mixed cached @100 with the streams open, of without (same run)",
                     f"{with_streams:,.0f} of {without:,.0f} req/s ({with_streams / without:.0%})", "≥ 90 %",
                     with_streams >= 0.9 * without))
    lines = ["| figure | measured | target | result |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {target} | {'**pass**' if ok else '**FAIL**'} |" for name, value, target, ok in rows]
    return ("Measured by bench/live.py after the suite: one token per stream over the bench users, "
            "held open while the mixed workload runs again.\n\n" + "\n".join(lines) + "\n")


def suite_document(stamp, measured, targets, env, notes, png_name, raw_dir, freshness=None, live=None) -> str:
    md = [f"# Benchmark {stamp}\n\n", suite_intro(env, targets),
          "## Results\n\n", main_table(measured), "\n", f"![throughput and p99]({png_name})\n\n",
          "## Targets\n\n", targets_table(targets), "\n"]
    if freshness:
        md += ["## Freshness (issue 9)\n\n", freshness_section(freshness), "\n"]
    if live:
        md += ["## Live streams (issue 11)\n\n", live_section(live, measured), "\n"]
    if notes:
        md += ["## Anything odd\n\n", notes, "\n"]
    md += ["## CPU per request (µs)\n\n", CPU_PER_REQUEST_NOTE, cpu_per_request_table(measured), "\n",
           f"## CPU during each run (cores, of {env.get('host_cpus', '?')})\n\n", cpu_table(measured), "\n",
           "## Details\n\n", detail_table(measured), "\n",
           "## Exact commands\n\n", commands_section([m.run for m in measured], env, raw_dir), "\n",
           "## Environment\n\n", environment_section(env)]
    return "".join(md)


def suite_readme_block(stamp, md_link, png_link, measured, targets, env, notes) -> str:
    passed = sum(t.passed for t in targets)
    return (f"Latest run: [{stamp}]({md_link}) — targets {passed}/{len(targets)} pass; "
            f"machine before the first run: {env.get('busy_before', '?')}.\n\n"
            + main_table(measured) + "\n" + "CPU µs per request:\n\n" + cpu_per_request_table(measured) + "\n"
            + targets_table(targets) + "\n" + (notes + "\n" if notes else "")
            + f"![throughput and p99]({png_link})\n")


def soak_sentence(soak, env) -> str:
    growth = ", ".join(f"{g:+.1f} MB" for g in soak.growth_mb) if soak.growth_mb else "none did (recycled)"
    verdict = "pass" if soak.rss_max_mb <= RSS_MB else "FAIL"
    return (f"Soak: mixed workload at {soak.conns} connections for {len(soak.windows)} windows of "
            f"{soak.window_s} s ({soak.requests:,} requests, {soak.errors} errors). Worker RSS: "
            f"max {soak.rss_max_mb:.1f} MB (target ≤ {RSS_MB:.0f} MB: {verdict}); growth of the "
            f"workers that lived through the whole soak: {growth}; "
            f"{soak.replaced} worker(s) replaced on the way (MAX_REQUESTS={env.get('max_requests')}). "
            f"p99 per window: median {soak.p99_median_ms:.2f} ms, worst {soak.p99_worst_ms:.2f} ms.\n\n")


def soak_document(stamp, soak, measured, env, notes, png_name, raw_dir) -> str:
    md = [f"# Soak {stamp}\n\n", soak_sentence(soak, env),
          f"![RSS, p99, throughput over time]({png_name})\n\n",
          "## Per window\n\n", soak_table(soak), "\n"]
    if notes:
        md += ["## Anything odd\n\n", notes, "\n"]
    md += ["## Exact commands\n\n", commands_section([m.run for m in measured[:2]], env, raw_dir),
           f"\nThe soak windows are that wrk command back to back with `-d{soak.window_s}s`; "
           "RSS sampled after each window.\n\n", "## Environment\n\n", environment_section(env)]
    return "".join(md)
