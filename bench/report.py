#!/usr/bin/env python3
"""The benchmark's report: parses the raw outputs of bench/run.sh and writes the results.

    bench/report.py count RUN.meta
        the X-Cache values nginx logged for the run (its access log byte range) -> RUN.access.json
    bench/report.py progress RUN.meta
        one progress line for a finished run (stderr of bench/run.sh)
    bench/report.py write OUT_DIR [--results bench/results] [--readme bench/README.md]
        bench/results/<stamp>.md (tables, targets, exact commands), <stamp>.json (every
        number), <stamp>.png (throughput and p99 against connections; for a soak: RSS, p99 and
        throughput over time), and the latest table in the README between its markers.

OUT_DIR (.bench-run/bench/out/<stamp>/) holds, per run NN-name: .meta (key=value: what ran,
Postgres transaction counters before/after, the access log byte range), .out (wrk's output
with the BENCH_SUMMARY line of bench/mixed.lua, or ab's), .before.json/.after.json
(bench/sample.py: CPU ticks per process group, each worker's RSS); and `environment`.
"""
import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Targets (bench/README.md)
TARGET_CACHED_RATIO = 0.15      # mixed@100 cached: >= 15 % of the ceiling at 100
TARGET_CACHED_P99_MS = 10.0     #                   p99 <= 10 ms, zero errors
TARGET_UNCACHED_RATIO = 0.04    # mixed@100 uncached: >= 4 % of the ceiling
TARGET_UNCACHED_P99_MS = 50.0   #                     p99 <= 50 ms, zero errors
TARGET_RSS_MB = 32.0            # every worker after every run
# Each view is one prepared statement, its own (autocommit) transaction: status_view,
# positions_open, guards_view (Sources/TradingAPI/Views).
XACTS_PER_RECOMPUTE = 1  # every view is one statement (one autocommit transaction)
# "Roughly": cache-aside without a lock lets two workers that miss the same key at the same
# moment both recompute it; a few such doubles are allowed, a stampede is not.
PG_BOUND_TOLERANCE = 0.05
# A run during which other processes used this many cores or more is flagged.
NEIGHBOUR_CORES = 0.2
VIEWS = {"mixed": 3, "status": 1, "open": 1, "guards": 1}

README_BEGIN = "<!-- bench:latest:begin -->"
README_END = "<!-- bench:latest:end -->"
SOAK_BEGIN = "<!-- bench:soak:begin -->"
SOAK_END = "<!-- bench:soak:end -->"


# ---------------------------------------------------------------------------------------------
# Parsing

def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def parse_wrk(text):
    for line in text.splitlines():
        if line.startswith("BENCH_SUMMARY "):
            s = json.loads(line[len("BENCH_SUMMARY "):])
            lat = s["latency_us"]
            return {
                "requests": s["requests"],
                "duration_s": s["duration_us"] / 1e6,
                "rps": s["rps"],
                "bytes_per_request": s["bytes"] / s["requests"] if s["requests"] else None,
                "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000,
                "p99_ms": lat["p99"] / 1000, "max_ms": lat["max"] / 1000,
                "mean_ms": lat["mean"] / 1000,
                "non2xx": s["non2xx"],
                "statuses": s["status"],
                "client_x_cache": s["x_cache"],
                "socket_errors": s["socket_errors"],
            }
    return None


def parse_ab(text):
    def num(pattern, default=None, cast=float):
        m = re.search(pattern, text, re.M)
        return cast(m.group(1)) if m else default

    complete = num(r"^Complete requests:\s+(\d+)", cast=int)
    if complete is None:
        return None
    duration = num(r"^Time taken for tests:\s+([\d.]+) seconds")
    pct = {int(p): float(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\d+)", text, re.M)}
    failed = num(r"^Failed requests:\s+(\d+)", 0, int)
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", text)
    connect, receive, length, exceptions = (int(x) for x in m.groups()) if m else (0, 0, 0, 0)
    write_errors = num(r"^Write errors:\s+(\d+)", 0, int)
    non2xx = num(r"^Non-2xx responses:\s+(\d+)", 0, int)
    total_bytes = num(r"^Total transferred:\s+(\d+) bytes", 0, int)
    return {
        "requests": complete,
        "duration_s": duration,
        "rps": num(r"^Requests per second:\s+([\d.]+)"),
        "bytes_per_request": total_bytes / complete if complete else None,
        # ab's percentiles are whole milliseconds
        "p50_ms": pct.get(50), "p90_ms": pct.get(90), "p99_ms": pct.get(99), "max_ms": pct.get(100),
        "mean_ms": num(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$"),
        "non2xx": non2xx,
        "statuses": {},
        "client_x_cache": {},
        "socket_errors": {"connect": connect, "read": receive, "write": write_errors,
                          "timeout": 0, "exceptions": exceptions},
        "ab_failed": failed, "ab_length_mismatch": length,
        "keepalive_requests": num(r"^Keep-Alive requests:\s+(\d+)", 0, int),
    }


CACHE_RE = re.compile(rb'"cache":"([A-Z]*)"')
STATUS_RE = re.compile(rb'"status":(\d+)')


def access_log_counts(meta):
    """X-Cache values nginx logged ($upstream_http_x_cache) for this run's byte range."""
    path = meta.get("access_log")
    counts = {"HIT": 0, "MISS": 0, "BYPASS": 0, "none": 0, "lines": 0, "non200": 0}
    try:
        start, end = int(meta["access_from"]), int(meta["access_to"])
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(max(0, end - start))
    except (OSError, KeyError, ValueError):
        return None
    for line in data.splitlines():
        if not line.strip():
            continue
        counts["lines"] += 1
        m = CACHE_RE.search(line)
        v = m.group(1).decode() if m else ""
        counts[v if v in ("HIT", "MISS", "BYPASS") else "none"] += 1
        s = STATUS_RE.search(line)
        if s and s.group(1) != b"200":
            counts["non200"] += 1
    return counts


def cpu_shares(before, after, duration):
    """Cores used by each group between two snapshots (and the machine as a whole)."""
    if not before or not after or not duration:
        return None
    tck = after.get("clk_tck", 100)
    out = {}
    def total(group):
        return sum(group.get("live", {}).values()) + group.get("reaped", 0)

    for name, g_after in after.get("groups", {}).items():
        g_before = before.get("groups", {}).get(name)
        if g_before is None:
            continue
        out[name] = max(0, total(g_after) - total(g_before)) / tck / duration
    total = after["cpu"]["total"] - before["cpu"]["total"]
    idle = after["cpu"]["idle"] - before["cpu"]["idle"]
    ncpu = after.get("ncpu") or 1
    out["machine"] = (total - idle) / total * ncpu if total > 0 else None
    known = sum(v for k, v in out.items() if k != "machine")
    out["other"] = max(0.0, out["machine"] - known) if out["machine"] is not None else None
    return out


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_run(meta_path):
    meta = read_meta(meta_path)
    base = str(meta_path)[:-len(".meta")]
    try:
        text = Path(base + ".out").read_text(errors="replace")
    except OSError:
        text = ""
    parsed = parse_wrk(text) if meta.get("tool") == "wrk" else parse_ab(text)
    run = {k: meta.get(k) for k in ("id", "name", "kind", "conns", "target", "endpoint", "tool",
                                    "cache_ttl", "url", "env", "command", "exit")}
    run["conns"] = int(meta["conns"])
    run["ok"] = parsed is not None
    if parsed is None:
        err = ""
        try:
            err = Path(base + ".err").read_text(errors="replace").strip()[-300:]
        except OSError:
            pass
        run["error"] = f"no summary in {base}.out (exit {meta.get('exit')}) {err}".strip()
        return run
    run.update(parsed)
    se = run["socket_errors"]
    run["socket_errors_total"] = sum(se.get(k, 0) for k in ("connect", "read", "write", "timeout", "exceptions"))
    run["errors_total"] = run["socket_errors_total"] + (run["non2xx"] or 0)
    duration = run["duration_s"] or (float(meta["t_end"]) - float(meta["t_start"]))
    try:
        # minus the health checks of pg_nudge (±16 transactions: not every one is published)
        xacts = max(0, int(meta["xacts_after"]) - int(meta["xacts_before"]) - int(meta.get("xacts_nudge") or 0))
        run["pg_xacts"] = xacts
        run["pg_tps"] = xacts / duration
        run["pg_xacts_per_request"] = xacts / run["requests"] if run["requests"] else None
    except (KeyError, ValueError):
        run["pg_xacts"] = run["pg_tps"] = run["pg_xacts_per_request"] = None
    if meta.get("target") == "stack":
        counts = load_json(base + ".access.json") or access_log_counts(meta)
        run["access_log"] = counts
        if counts:
            looked_up = counts["HIT"] + counts["MISS"] + counts["BYPASS"]
            run["cache_hit_ratio"] = counts["HIT"] / looked_up if looked_up else None
            run["recomputes_per_s"] = (counts["MISS"] + counts["BYPASS"]) / duration
    before = load_json(base + ".before.json")
    after = load_json(base + ".after.json")
    run["cpu_cores"] = cpu_shares(before, after, float(meta["t_end"]) - float(meta["t_start"]))
    if after and after.get("workers"):
        run["workers"] = [{"pid": w["pid"], "start": w["start"],
                           "rss_mb": (w["rss_kb"] or 0) / 1024} for w in after["workers"]]
        run["rss_max_mb"] = max(w["rss_mb"] for w in run["workers"])
        keys_before = {(w["pid"], w["start"]) for w in (before or {}).get("workers", [])}
        keys_after = {(w["pid"], w["start"]) for w in after["workers"]}
        run["workers_replaced"] = len(keys_after - keys_before) if before else None
        run["supervisor_rss_mb"] = (after.get("supervisor_rss_kb") or 0) / 1024
    if before and before.get("workers"):
        run["workers_before"] = [{"pid": w["pid"], "start": w["start"],
                                  "rss_mb": (w["rss_kb"] or 0) / 1024} for w in before["workers"]]
    run["t_start"] = float(meta["t_start"])
    run["t_end"] = float(meta["t_end"])
    return run


def load_runs(out_dir):
    return [load_run(p) for p in sorted(Path(out_dir).glob("*.meta"))]


def attach_ceiling(runs):
    ceilings = {r["conns"]: r for r in runs if r.get("kind") == "ceiling" and r.get("ok")}
    ab_ceilings = {r["conns"]: r for r in runs if r.get("kind") == "ab-ceiling" and r.get("ok")}
    for r in runs:
        if not r.get("ok") or r["kind"] in ("ceiling", "ab-ceiling"):
            continue
        c = (ab_ceilings if r["kind"] == "ab" else ceilings).get(r["conns"])
        if c and c.get("rps"):
            r["ceiling_rps"] = c["rps"]
            r["ceiling_ratio"] = r["rps"] / c["rps"]


# ---------------------------------------------------------------------------------------------
# Formatting

def f_num(v, digits=0, unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:,.{digits}f}{unit}"


def f_ms(v):
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def f_pct(v, digits=1):
    return "–" if v is None else f"{100 * v:.{digits}f} %"


def f_sock(r):
    se = r.get("socket_errors") or {}
    parts = [se.get("connect", 0), se.get("read", 0), se.get("write", 0), se.get("timeout", 0)]
    return "/".join(str(x) for x in parts)


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


def label(r):
    return LABELS.get(r["kind"], r["kind"]).format(endpoint=ENDPOINT_NAMES.get(r["endpoint"], r["endpoint"]))


def progress_line(r):
    if not r.get("ok"):
        return f"[bench] {r['id']}: FAILED: {r.get('error')}"
    parts = [f"{r['id']}: {f_num(r['rps'])} req/s", f"p50 {f_ms(r['p50_ms'])} ms",
             f"p99 {f_ms(r['p99_ms'])} ms", f"max {f_ms(r['max_ms'])} ms",
             f"non-2xx {r['non2xx']}", f"socket errors {f_sock(r)}"]
    if r.get("cache_hit_ratio") is not None:
        parts.append(f"hit {f_pct(r['cache_hit_ratio'])}")
    if r.get("target") == "stack" and r.get("pg_tps") is not None:
        parts.append(f"PG {f_num(r['pg_tps'])} xact/s")
    if r.get("target") == "stack" and r.get("rss_max_mb") is not None:
        parts.append(f"RSS max {r['rss_max_mb']:.1f} MB")
    return "[bench] " + ", ".join(parts)


def main_table(runs):
    head = ("| run | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors c/r/w/t "
            "| % of ceiling | cache hit | PG xact/s | worker RSS MB (max) |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = []
    for r in runs:
        if not r.get("ok"):
            rows.append(f"| {label(r)} | {r['conns']} | failed: {r.get('error', '')[:80]} |" + " |" * 10)
            continue
        stack = r["target"] == "stack"
        rows.append("| " + " | ".join([
            label(r), str(r["conns"]), f_num(r["rps"]), f_ms(r["p50_ms"]), f_ms(r["p90_ms"]),
            f_ms(r["p99_ms"]), f_ms(r["max_ms"]), str(r["non2xx"]), f_sock(r),
            f_pct(r.get("ceiling_ratio")) if stack else "100 %" if r["kind"] == "ceiling" or r["kind"] == "ab-ceiling" else "–",
            f_pct(r.get("cache_hit_ratio")) if stack else "–",
            f_num(r.get("pg_tps")) if stack else "–",
            f_num(r.get("rss_max_mb"), 1) if stack else "–",
        ]) + " |")
    return head + "\n".join(rows) + "\n"


def targets(runs, env):
    def find(kind, conns, endpoint="mixed"):
        for r in runs:
            if r.get("ok") and r["kind"] == kind and r["conns"] == conns and r["endpoint"] == endpoint:
                return r
        return None

    def res(ok):
        return "**pass**" if ok else "**FAIL**"

    rows = []
    m100 = find("mixed", 100)
    if m100:
        ratio = m100.get("ceiling_ratio")
        rows.append(("mixed@100 cached: throughput ≥ 15 % of the ceiling at 100",
                     f_pct(ratio), ratio is not None and ratio >= TARGET_CACHED_RATIO))
        rows.append(("mixed@100 cached: p99 ≤ 10 ms", f"{f_ms(m100['p99_ms'])} ms",
                     m100["p99_ms"] <= TARGET_CACHED_P99_MS))
        rows.append(("mixed@100 cached: zero errors (non-2xx + socket)", str(m100["errors_total"]),
                     m100["errors_total"] == 0))
    m200 = find("mixed", 200)
    if m200:
        rows.append(("mixed@200 cached: zero errors", str(m200["errors_total"]), m200["errors_total"] == 0))
    u100 = find("uncached", 100)
    if u100:
        ratio = u100.get("ceiling_ratio")
        rows.append(("mixed@100 uncached: throughput ≥ 4 % of the ceiling at 100",
                     f_pct(ratio), ratio is not None and ratio >= TARGET_UNCACHED_RATIO))
        rows.append(("mixed@100 uncached: p99 ≤ 50 ms", f"{f_ms(u100['p99_ms'])} ms",
                     u100["p99_ms"] <= TARGET_UNCACHED_P99_MS))
        rows.append(("mixed@100 uncached: zero errors", str(u100["errors_total"]), u100["errors_total"] == 0))
    rss = [(r["rss_max_mb"], r["id"]) for r in runs
           if r.get("rss_max_mb") is not None and r.get("target") == "stack"]
    if rss:
        worst = max(rss)
        rows.append(("every worker's RSS after every run ≤ 32 MB", f"{worst[0]:.1f} MB ({worst[1]})",
                     worst[0] <= TARGET_RSS_MB))
    # Postgres: at most one recompute per user, view and TTL. In a run of D seconds an entry
    # with a TTL of T seconds expires at most floor(D/T)+1 times (the +1: the entries the
    # warm-up stored expire during the run), so the transactions of the run are at most
    # users x views x (floor(D/T)+1) x 2 (two statements per view); per second, over D.
    users = int(env.get("users", 1000))
    for r in runs:
        if not r.get("ok") or r["kind"] not in ("mixed", "single") or r.get("pg_tps") is None:
            continue
        ttl = int(r["cache_ttl"]) if (r.get("cache_ttl") or "-").isdigit() else 0
        if ttl <= 0 or not r.get("duration_s"):
            continue
        views = VIEWS.get(r["endpoint"], 3)
        d = r["duration_s"]
        expiries = math.floor(d / ttl) + 1
        bound = users * views * expiries * XACTS_PER_RECOMPUTE / d
        r["pg_tps_bound"] = bound
        rows.append((f"{r['id']}: PG xact/s ≤ users × views × (⌊D/TTL⌋+1) × {XACTS_PER_RECOMPUTE} / D = "
                     f"{users} × {views} × {expiries} × {XACTS_PER_RECOMPUTE} / {d:.0f}",
                     f"{f_num(r['pg_tps'])} ≤ {f_num(bound)}"
                     + (f" (recomputes {f_num(r.get('recomputes_per_s'))}/s ≤ {f_num(bound / XACTS_PER_RECOMPUTE)})"
                        if r.get("recomputes_per_s") is not None else ""),
                     r["pg_tps"] <= bound * (1 + PG_BOUND_TOLERANCE)))
    out = "| target | measured | result |\n|---|---|---|\n"
    out += "\n".join(f"| {name} | {value} | {res(ok)} |" for name, value, ok in rows) + "\n"
    return out, rows


def cpu_table(runs):
    out = ("| run | conns | machine busy | nginx | trading-api workers | postgres | memcached | ceiling nginx "
           "| wrk / ab | other processes |\n"
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in runs:
        c = r.get("cpu_cores")
        if not r.get("ok") or not c:
            continue
        cells = [c.get("machine"), c.get("nginx"), c.get("pool"), c.get("postgres"),
                 c.get("memcached"), c.get("ceiling"), c.get("bench"), c.get("other")]
        out += f"| {label(r)} | {r['conns']} | " + " | ".join(f_num(x, 2) for x in cells) + " |\n"
    return out


def detail_table(runs):
    out = ("| run | requests | bytes/resp | X-Cache logged HIT/MISS/BYPASS | PG xact/request | "
           "workers replaced during run | each worker's RSS MB after |\n|---|---:|---:|---|---:|---:|---|\n")
    for r in runs:
        if not r.get("ok") or r["target"] != "stack":
            continue
        al = r.get("access_log") or {}
        xc = f"{al.get('HIT', 0)}/{al.get('MISS', 0)}/{al.get('BYPASS', 0)}" if al else "–"
        each = " ".join(f"{w['rss_mb']:.1f}" for w in r.get("workers", []))
        out += (f"| {r['id']} | {r['requests']:,} | {f_num(r.get('bytes_per_request'))} | {xc} | "
                f"{f_num(r.get('pg_xacts_per_request'), 3)} | {f_num(r.get('workers_replaced'))} | {each} |\n")
    return out


def commands_section(runs, env, out_dir):
    lines = []
    lines.append("The stack (scripts/stack.sh, state in `.bench-run/`):\n")
    lines.append("```sh")
    lines.append(f"RUN_DIR=.bench-run {env.get('ports_env', '')}DEMO_DATA=0 "
                 "TRADING_API_BIN=.build/release/trading-api \\\n"
                 "  RATE_LIMIT_PER_ADDR=1000000 RATE_BURST_PER_ADDR=1000000 "
                 "RATE_LIMIT_PER_TOKEN=1000000 RATE_BURST_PER_TOKEN=1000000 \\\n"
                 f"  CACHE_TTL_SECONDS={env.get('cache_ttl', 5)} scripts/stack.sh up     "
                 "# CACHE_TTL_SECONDS=0 for the uncached run, then back")
    lines.append(f"scripts/generate-data.sh {env.get('users')} {env.get('rows_per_user')}   "
                 "# DATABASE_URL from .bench-run/stack.env; skipped when already loaded")
    lines.append("JWT_SECRET_KEY=… bench/make_tokens.py "
                 f"{env.get('users')} .bench-run/bench/tokens.txt --ttl 604800")
    lines.append("nginx -p .bench-run/bench/ceiling/ -c .bench-run/bench/ceiling/nginx.conf   "
                 "# rendered from bench/ceiling-nginx.conf")
    lines.append("```\n")
    warm = env.get("warmup", "5")
    lines.append(f"Each run, after a {warm}-s warm-up with the same command and `-d{warm}s`/`-t {warm}` "
                 "(not counted), is exactly:\n")
    lines.append("```sh")
    for r in runs:
        if r.get("command"):
            lines.append(f"# {r['id']}")
            lines.append(f"{r.get('env', '')} {r['command']}".strip())
    lines.append("```\n")
    lines.append("Around each run: `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE "
                 "datname = 'trading'` (as postgres, over the stack's socket) before and after; "
                 "the X-Cache values nginx logged (`\"cache\"` in `.bench-run/logs/nginx-access.log`, "
                 "truncated before the run); bench/sample.py (CPU ticks, each worker's VmRSS) "
                 "before and after. Raw outputs: `" + os.path.relpath(out_dir, ROOT) + "/`.\n")
    return "\n".join(lines)


def environment_section(env):
    keys = [("date", "started (UTC)"), ("finished", "finished (UTC)"), ("host_cpus", "CPUs"),
            ("cpu_model", "CPU"), ("mem_total", "memory"), ("kernel", "kernel"), ("nginx", "nginx"),
            ("wrk", "wrk"), ("ab", "ab"), ("postgres", "Postgres"), ("memcached", "memcached"),
            ("git_head", "git HEAD"), ("git_dirty_sources", "uncommitted files under Sources/"),
            ("binary", "binary"), ("binary_built", "binary built"), ("binary_sha256", "binary sha256 (12)"),
            ("workers", "WORKERS"), ("max_requests", "MAX_REQUESTS"), ("cache_ttl", "CACHE_TTL_SECONDS"),
            ("dataset", "dataset"), ("threads", "wrk threads"), ("duration", "seconds per run"),
            ("warmup", "warm-up seconds"), ("ports", "ports"), ("loadavg_start", "load average at start"),
            ("loadavg_end", "load average at end"),
            ("busy_before", "machine busy in the 2 s before the first run")]
    out = "| | |\n|---|---|\n"
    for k, name in keys:
        if env.get(k):
            out += f"| {name} | {env[k].replace('|', '/')} |\n"
    return out


def read_range(path, start, end):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(max(0, end - start)).decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def scan_logs(env):
    """What the stack's own logs said during the benchmark (byte ranges from run.sh)."""
    log_dir = env.get("log_dir")
    if not log_dir:
        return None

    def rng(name):
        try:
            return int(env[f"{name}_from"]), int(env[f"{name}_to"])
        except (KeyError, ValueError):
            return None

    out = {"recycled": 0, "pool_problems": [], "nginx_problems": [], "pg_slow": [], "pg_errors": []}
    r = rng("pool_log")
    if r:
        for line in read_range(os.path.join(log_dir, "pool.log"), *r):
            parts = line.split(" ", 2)
            level = parts[1] if len(parts) > 1 else ""
            if "exited cleanly" in line and "recycling" in line:
                out["recycled"] += 1
            elif level in ("warning", "error", "critical"):
                out["pool_problems"].append(line)
    r = rng("nginx_error_log")
    if r:
        out["nginx_problems"] = [l for l in read_range(os.path.join(log_dir, "nginx-error.log"), *r)
                                 if "[notice]" not in l and l.strip()]
    r = rng("postgres_log")
    if r:
        for line in read_range(os.path.join(log_dir, "postgres.log"), *r):
            if "duration:" in line:
                out["pg_slow"].append(line)
            elif "ERROR:" in line or "FATAL:" in line or "PANIC:" in line:
                out["pg_errors"].append(line)
    return out


def observations(runs, env):
    notes = []
    logs = scan_logs(env)
    if logs:
        if logs["recycled"]:
            notes.append(f"- Workers recycled {logs['recycled']} times during the benchmark (pool.log: "
                         f"\"exited cleanly … recycling\", MAX_REQUESTS={env.get('max_requests')}); "
                         "each recycle is a new process, a new Postgres connection and re-prepared "
                         "statements.")
        for key, what in (("pool_problems", "warnings/errors in pool.log"),
                          ("nginx_problems", "lines above [notice] in nginx-error.log"),
                          ("pg_errors", "ERROR/FATAL lines in postgres.log"),
                          ("pg_slow", "statements of 500 ms or more in postgres.log "
                                      "(log_min_duration_statement)")):
            lines = logs[key]
            if lines:
                sample = "; ".join(f"`{l.strip()[:160]}`" for l in lines[:3])
                notes.append(f"- {len(lines)} {what}, e.g. {sample}")
    for r in runs:
        if not r.get("ok"):
            notes.append(f"- `{r['id']}` produced no summary: {r.get('error')}")
            continue
        if r["errors_total"]:
            st = {k: v for k, v in (r.get("statuses") or {}).items() if not k.startswith("2")}
            notes.append(f"- `{r['id']}`: {r['non2xx']} non-2xx {st or ''} and socket errors "
                         f"{f_sock(r)} (connect/read/write/timeout).")
        al = r.get("access_log")
        if al and r["kind"] in ("mixed", "single", "ab", "soak") and al.get("BYPASS"):
            notes.append(f"- `{r['id']}`: {al['BYPASS']} `X-Cache: BYPASS` with caching on: a memcached "
                         "call failed or timed out (MEMCACHED_TIMEOUT_MS, default 20 ms) and the worker "
                         "went to Postgres.")
        if al and r["tool"] == "wrk" and r["requests"] and abs(al["lines"] - r["requests"]) > max(50, 0.02 * r["requests"]):
            notes.append(f"- `{r['id']}`: nginx logged {al['lines']:,} lines for {r['requests']:,} "
                         "requests wrk counted (wrk counts completed responses only; a gap hints at "
                         "requests cut off at the end or lines of a neighbouring run).")
    busy = [(r["id"], r["cpu_cores"]["other"]) for r in runs
            if r.get("ok") and r.get("cpu_cores") and (r["cpu_cores"].get("other") or 0) >= NEIGHBOUR_CORES]
    if busy:
        notes.append(f"- Other processes on the machine (not this benchmark) used ≥ {NEIGHBOUR_CORES} cores "
                     "during " + ", ".join(f"`{i}` ({o:.2f})" for i, o in busy) + ": those runs had less "
                     "than the whole machine, and their ratio to a ceiling measured under different "
                     "neighbours is off too. Compare runs with ~0 \"other processes\" (CPU table), or "
                     "run again on a quiet machine.")
    return "\n".join(notes) + ("\n" if notes else "")


# ---------------------------------------------------------------------------------------------
# Plots

def plot_suite(runs, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(kind, endpoint="mixed"):
        pts = sorted((r["conns"], r) for r in runs if r.get("ok") and r["kind"] == kind and r["endpoint"] == endpoint)
        return [c for c, _ in pts], [r for _, r in pts]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = [("ceiling", "mixed", "ceiling: nginx return 200 (1 KB)", "k", "--", "s"),
              ("mixed", "mixed", "mixed, cached (TTL 5 s)", "tab:blue", "-", "o"),
              ("uncached", "mixed", "mixed, uncached (TTL 0)", "tab:red", "-", "D")]
    for kind, endpoint, name, color, ls, marker in styles:
        xs, rs = series(kind, endpoint)
        if not xs:
            continue
        ax1.plot(xs, [r["rps"] for r in rs], ls, color=color, marker=marker, label=name)
        ax2.plot(xs, [r["p99_ms"] for r in rs], ls, color=color, marker=marker, label=name)
    for endpoint, marker in (("status", "^"), ("open", "v"), ("guards", "<")):
        xs, rs = series("single", endpoint)
        if xs:
            ax1.plot(xs, [r["rps"] for r in rs], marker, color="tab:green", alpha=0.7,
                     label=f"{ENDPOINT_NAMES[endpoint]} only, cached")
            ax2.plot(xs, [r["p99_ms"] for r in rs], marker, color="tab:green", alpha=0.7,
                     label=f"{ENDPOINT_NAMES[endpoint]} only, cached")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    ax2.axhline(TARGET_CACHED_P99_MS, color="tab:blue", lw=0.8, ls=":", label="target p99 cached (10 ms)")
    ax2.axhline(TARGET_UNCACHED_P99_MS, color="tab:red", lw=0.8, ls=":", label="target p99 uncached (50 ms)")
    for ax, title, ylabel in ((ax1, "Throughput", "requests/s"), (ax2, "p99 latency", "ms")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        conns = sorted({r["conns"] for r in runs if r.get("ok")})
        ax.set_xticks(conns)
        ax.set_xticklabels([str(c) for c in conns])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda v, _: (f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")))
        ax.set_xlabel("connections (wrk -t2)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8, loc="best")
    ax2.legend(fontsize=7, loc="best")
    fig.suptitle("trading-api via nginx + FastCGI pool, 1,000 users × 1,000 rows, loopback, 2 cores")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_soak(windows, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = windows[0]["t_start"]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    tracks = {}
    for wk in windows[0].get("workers_before", []):
        tracks.setdefault((wk["pid"], wk["start"]), []).append((0.0, wk["rss_mb"]))
    for w in windows:
        t = w["t_end"] - t0
        for wk in w.get("workers", []):
            tracks.setdefault((wk["pid"], wk["start"]), []).append((t, wk["rss_mb"]))
    for (pid, _), pts in sorted(tracks.items()):
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], "-o", ms=3, label=f"worker {pid}")
    ax1.axhline(TARGET_RSS_MB, color="tab:red", ls=":", lw=0.8, label="target 32 MB")
    ax1.set_ylabel("RSS (MB)")
    ax1.set_title("Worker RSS (each line one worker process)")
    ax1.legend(fontsize=7, ncol=4)
    xs = [w["t_end"] - t0 for w in windows]
    ax2.plot(xs, [w["p99_ms"] for w in windows], "-o", ms=3, color="tab:red", label="p99")
    ax2.plot(xs, [w["p50_ms"] for w in windows], "-o", ms=3, color="tab:blue", label="p50")
    ax2.set_ylabel("latency (ms)")
    ax2.set_title("Latency per window")
    ax2.legend(fontsize=8)
    ax3.plot(xs, [w["rps"] for w in windows], "-o", ms=3, color="tab:green")
    ax3.set_ylabel("requests/s")
    ax3.set_xlabel("seconds since the start of the soak")
    ax3.set_title("Throughput per window")
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Writing

def read_env(out_dir):
    env = {}
    p = Path(out_dir) / "environment"
    if p.exists():
        env = read_meta(p)
    m = re.search(r"HTTP (\d+), ceiling (\d+), Postgres (\d+), memcached (\d+)", env.get("ports", ""))
    if m:
        env["ports_env"] = f"HTTP_PORT={m.group(1)} PG_PORT={m.group(3)} MC_PORT={m.group(4)} "
    return env


def update_readme(readme, begin, end, content):
    path = Path(readme)
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{content.rstrip()}\n{end}"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def write_suite(runs, env, out_dir, results, readme):
    stamp = env.get("stamp") or Path(out_dir).name
    md_path = Path(results) / f"{stamp}.md"
    png_path = Path(results) / f"{stamp}.png"
    json_path = Path(results) / f"{stamp}.json"
    attach_ceiling(runs)
    plot_suite(runs, png_path)
    target_md, target_rows = targets(runs, env)
    table = main_table(runs)
    notes = observations(runs, env)
    passed = sum(1 for _, _, ok in target_rows if ok)
    title = f"# Benchmark {stamp}\n\n"
    intro = (f"`make bench`: wrk -t{env.get('threads', 2)}, {env.get('duration', 15)} s per run after a "
             f"{env.get('warmup', 5)}-s warm-up, on {env.get('host_cpus', '?')} CPUs shared by wrk, nginx, the "
             f"{env.get('workers', '?')} workers, Postgres and memcached, and whatever else ran (before the "
             f"first run: {env.get('busy_before', '?')}; per run: \"other processes\" in the CPU table). "
             f"Dataset: {env.get('dataset', '?')}. "
             f"Targets: {passed} of {len(target_rows)} pass.\n\n"
             "Columns: see [bench/README.md](../README.md#what-the-columns-mean). Cache hit ratio: the "
             "`X-Cache` values nginx logged for the run's requests (`$upstream_http_x_cache`), "
             "HIT / (HIT + MISS + BYPASS). Socket errors: connect/read/write/timeout (wrk's 2-s timeout).\n\n")
    md = [title, intro, "## Results\n\n", table, "\n", f"![throughput and p99]({png_path.name})\n\n",
          "## Targets\n\n", target_md, "\n"]
    if notes:
        md += ["## Anything odd\n\n", notes, "\n"]
    md += ["## CPU during each run (cores, of ", str(env.get("host_cpus", "?")), ")\n\n", cpu_table(runs), "\n",
           "## Details\n\n", detail_table(runs), "\n",
           "## Exact commands\n\n", commands_section(runs, env, out_dir), "\n",
           "## Environment\n\n", environment_section(env)]
    md_path.write_text("".join(md))
    json_path.write_text(json.dumps({"stamp": stamp, "environment": env, "runs": runs,
                                     "targets": [{"target": n, "measured": v, "pass": ok}
                                                 for n, v, ok in target_rows]}, indent=1, default=str))
    if readme:
        rel = os.path.relpath(results, Path(readme).parent)
        content = (f"Latest run: [{stamp}]({rel}/{md_path.name}) — targets {passed}/{len(target_rows)} pass; "
                   f"machine before the first run: {env.get('busy_before', '?')}.\n\n"
                   + table + "\n" + target_md + "\n" + (notes + "\n" if notes else "")
                   + f"![throughput and p99]({rel}/{png_path.name})\n")
        update_readme(readme, README_BEGIN, README_END, content)
    print(f"[bench] wrote {os.path.relpath(md_path, ROOT)}, {png_path.name}, {json_path.name}"
          + (f"; updated {readme}" if readme else ""), file=sys.stderr)
    print(table)
    print(target_md)
    if notes:
        print(notes)


def write_soak(runs, env, out_dir, results, readme):
    stamp = env.get("stamp") or Path(out_dir).name
    md_path = Path(results) / f"{stamp}.md"
    png_path = Path(results) / f"{stamp}.png"
    json_path = Path(results) / f"{stamp}.json"
    attach_ceiling(runs)
    windows = [r for r in runs if r.get("kind") == "soak" and r.get("ok")]
    if not windows:
        raise SystemExit("report.py: no soak windows with a summary")
    plot_soak(windows, png_path)
    t0 = windows[0]["t_start"]
    rows = ("| t (s) | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors c/r/w/t | cache hit "
            "| PG xact/s | workers replaced | each worker's RSS MB |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
    for w in windows:
        each = " ".join(f"{x['rss_mb']:.1f}" for x in w.get("workers", []))
        rows += (f"| {w['t_end'] - t0:.0f} | {f_num(w['rps'])} | {f_ms(w['p50_ms'])} | {f_ms(w['p99_ms'])} | "
                 f"{f_ms(w['max_ms'])} | {w['non2xx']} | {f_sock(w)} | {f_pct(w.get('cache_hit_ratio'))} | "
                 f"{f_num(w.get('pg_tps'))} | {f_num(w.get('workers_replaced'))} | {each} |\n")
    first = {(x["pid"], x["start"]): x["rss_mb"]
             for x in windows[0].get("workers_before") or windows[0].get("workers", [])}
    last = windows[-1].get("workers", [])
    growth = [x["rss_mb"] - first[(x["pid"], x["start"])] for x in last if (x["pid"], x["start"]) in first]
    total_req = sum(w["requests"] for w in windows)
    total_err = sum(w["errors_total"] for w in windows)
    rss_max = max(w.get("rss_max_mb") or 0 for w in windows)
    p99s = sorted(w["p99_ms"] for w in windows)
    replaced = sum(w.get("workers_replaced") or 0 for w in windows)
    summary = (f"Soak: mixed workload at 100 connections for {len(windows)} windows of "
               f"{env.get('soak_window', 10)} s ({total_req:,} requests, {total_err} errors). Worker RSS: "
               f"max {rss_max:.1f} MB (target ≤ {TARGET_RSS_MB:.0f} MB: "
               f"{'pass' if rss_max <= TARGET_RSS_MB else 'FAIL'}); growth of the workers that lived "
               f"through the whole soak: "
               f"{', '.join(f'{g:+.1f} MB' for g in growth) if growth else 'none did (recycled)'}; "
               f"{replaced} worker(s) replaced on the way (MAX_REQUESTS={env.get('max_requests')}). "
               f"p99 per window: median {p99s[len(p99s) // 2]:.2f} ms, worst {p99s[-1]:.2f} ms.\n\n")
    md = [f"# Soak {stamp}\n\n", summary, f"![RSS, p99, throughput over time]({png_path.name})\n\n",
          "## Per window\n\n", rows, "\n"]
    notes = observations(runs, env)
    if notes:
        md += ["## Anything odd\n\n", notes, "\n"]
    md += ["## Exact commands\n\n", commands_section(runs[:2], env, out_dir),
           f"\nThe soak windows are that wrk command back to back with `-d{env.get('soak_window', 10)}s`; "
           "RSS sampled after each window.\n\n", "## Environment\n\n", environment_section(env)]
    md_path.write_text("".join(md))
    json_path.write_text(json.dumps({"stamp": stamp, "environment": env, "runs": runs}, indent=1, default=str))
    if readme:
        rel = os.path.relpath(results, Path(readme).parent)
        update_readme(readme, SOAK_BEGIN, SOAK_END,
                      f"Latest soak: [{stamp}]({rel}/{md_path.name}). {summary}"
                      f"![RSS, p99, throughput over time]({rel}/{png_path.name})\n")
    print(f"[bench] wrote {os.path.relpath(md_path, ROOT)}, {png_path.name}, {json_path.name}", file=sys.stderr)
    print(summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("progress")
    p.add_argument("meta")
    c = sub.add_parser("count")
    c.add_argument("meta")
    w = sub.add_parser("write")
    w.add_argument("out_dir")
    w.add_argument("--results", default=str(ROOT / "bench" / "results"))
    w.add_argument("--readme")
    args = parser.parse_args()
    if args.cmd == "count":
        meta = read_meta(args.meta)
        counts = access_log_counts(meta)
        if counts is None:
            return 1
        with open(args.meta[:-len(".meta")] + ".access.json", "w") as f:
            json.dump(counts, f)
        return 0
    if args.cmd == "progress":
        run = load_run(args.meta)
        print(progress_line(run), flush=True)
        return 0
    runs = load_runs(args.out_dir)
    if not runs:
        print(f"report.py: no runs in {args.out_dir}", file=sys.stderr)
        return 1
    env = read_env(args.out_dir)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    if any(r.get("kind") == "soak" for r in runs):
        write_soak(runs, env, args.out_dir, args.results, args.readme)
    else:
        write_suite(runs, env, args.out_dir, args.results, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
