"""Render and write: <stamp>.md, .json, .png under --results, and the README's latest block."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from reporting import compute, markdown, plots, raw, targets as targets_mod
from reporting.tables import main_table, targets_table

ROOT = Path(__file__).resolve().parents[2]
README_MARKERS = {"suite": ("<!-- bench:latest:begin -->", "<!-- bench:latest:end -->"),
                  "soak": ("<!-- bench:soak:begin -->", "<!-- bench:soak:end -->")}


def run_json(m: compute.Measured) -> dict:
    """One run for the .json: what was read, then what was computed from it."""
    run, r, fig = m.run, m.run.result, m.fig
    out = {k: run.meta.get(k) for k in ("id", "name", "kind", "conns", "target", "endpoint", "tool",
                                         "cache_ttl", "url", "exit")}
    out.update(conns=run.conns, argv=list(run.argv), command=markdown.command_line(run), ok=run.ok)
    if r is None:
        out["error"] = run.error
        return out
    result = dataclasses.asdict(r)
    out.update({k: v for k, v in result.items() if k != "ab_counts"}, **r.ab_counts)
    figures = dataclasses.asdict(fig)
    bound = figures.pop("pg_bound")
    out.update(socket_errors_total=fig.socket_errors_total, errors_total=fig.errors_total,
               pg_xacts=fig.pg_xacts, pg_tps=fig.pg_tps, pg_xacts_per_request=fig.pg_xacts_per_request)
    if run.target == "stack":
        out["access_log"] = run.access
        if run.access:
            out.update(cache_hit_ratio=fig.cache_hit_ratio, recomputes_per_s=fig.recomputes_per_s)
    out["cpu_cores"] = fig.cpu_cores
    out["cpu_us_per_request"] = fig.cpu_us_per_request
    out["kernel_share"] = fig.kernel_share
    out["switches_per_request"] = fig.switches_per_request
    for key in ("workers", "rss_max_mb", "workers_replaced", "supervisor_rss_mb", "workers_before",
                "ceiling_rps", "ceiling_ratio"):
        if figures[key] is not None:
            out[key] = figures[key]
    out.update(t_start=run.t_start, t_end=run.t_end)
    if bound:
        out["pg_tps_bound"] = bound["xact_per_s"]
    return out


def update_readme(readme, which, content) -> None:
    """Replaces the block between the README's markers (appends it when they are missing)."""
    begin, end = README_MARKERS[which]
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


class Paths:
    """<results>/<stamp>.{md,png,json}; links to them as seen from the README."""

    def __init__(self, results, stamp, readme):
        self.md, self.png, self.json = (Path(results) / f"{stamp}.{ext}" for ext in ("md", "png", "json"))
        rel = os.path.relpath(results, Path(readme).parent) if readme else str(results)
        self.md_link, self.png_link = f"{rel}/{self.md.name}", f"{rel}/{self.png.name}"


def write_report(out_dir, results, readme) -> int:
    """Parse OUT_DIR, compute, render: the suite's or the soak's files (and README block)."""
    runs, env = raw.read_runs(out_dir), raw.read_environment(out_dir)
    if not runs:
        print(f"report.py: no runs in {out_dir}", file=sys.stderr)
        return 1
    stamp = env.get("stamp") or Path(out_dir).name
    measured = compute.measure_all(runs)
    notes = markdown.notes_section(measured, env, raw.read_log_findings(env))
    paths = Paths(results, stamp, readme)
    raw_dir = os.path.relpath(out_dir, ROOT)
    write = write_soak if any(run.kind == "soak" for run in runs) else write_suite
    write(stamp, measured, env, notes, paths, raw_dir, readme)
    return 0


def write_suite(stamp, measured, env, notes, paths, raw_dir, readme) -> None:
    targets = targets_mod.suite_targets(measured)
    plots.plot_suite(measured, env, paths.png)
    fresh_path = Path(ROOT) / raw_dir / "freshness.json"
    freshness = json.loads(fresh_path.read_text()) if fresh_path.is_file() else None
    live_path = Path(ROOT) / raw_dir / "live.json"
    live = json.loads(live_path.read_text()) if live_path.is_file() else None
    paths.md.write_text(markdown.suite_document(stamp, measured, targets, env, notes, paths.png.name, raw_dir,
                                                freshness, live))
    paths.json.write_text(json.dumps(
        {"stamp": stamp, "environment": dict(env), "runs": [run_json(m) for m in measured],
         "targets": [{"target": t.name, "measured": t.measured, "pass": t.passed} for t in targets],
         "freshness": freshness, "live": live},
        indent=1, default=str))
    if readme:
        update_readme(readme, "suite", markdown.suite_readme_block(
            stamp, paths.md_link, paths.png_link, measured, targets, env, notes))
    print(f"[bench] wrote {os.path.relpath(paths.md, ROOT)}, {paths.png.name}, {paths.json.name}"
          + (f"; updated {readme}" if readme else ""), file=sys.stderr)
    print(main_table(measured))
    print(targets_table(targets))
    if notes:
        print(notes)


def write_soak(stamp, measured, env, notes, paths, raw_dir, readme) -> None:
    soak = compute.soak_summary(measured, env)
    if soak is None:
        raise SystemExit("report.py: no soak windows with a summary")
    plots.plot_soak(soak, paths.png)
    paths.md.write_text(markdown.soak_document(stamp, soak, measured, env, notes, paths.png.name, raw_dir))
    paths.json.write_text(json.dumps(
        {"stamp": stamp, "environment": dict(env), "runs": [run_json(m) for m in measured]},
        indent=1, default=str))
    sentence = markdown.soak_sentence(soak, env)
    if readme:
        update_readme(readme, "soak", f"Latest soak: [{stamp}]({paths.md_link}). {sentence}"
                                      f"![RSS, p99, throughput over time]({paths.png_link})\n")
    print(f"[bench] wrote {os.path.relpath(paths.md, ROOT)}, {paths.png.name}, {paths.json.name}",
          file=sys.stderr)
    print(sentence)
