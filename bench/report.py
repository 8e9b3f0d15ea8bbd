#!/usr/bin/env python3
"""The benchmark's report, from the raw outputs of bench/run.sh.

    bench/report.py count RUN.meta
        the X-Cache values nginx logged for the run (its access log byte range) -> RUN.access.json
    bench/report.py progress RUN.meta
        one progress line for a finished run (stderr of bench/run.sh)
    bench/report.py write OUT_DIR [--results bench/results] [--readme bench/README.md]
        bench/results/<stamp>.md (tables, targets, exact commands), <stamp>.json (every
        number), <stamp>.png (throughput and p99 against connections; for a soak: RSS, p99 and
        throughput over time), and the latest table in the README between its markers.

The work is in bench/reporting/: parse (raw.py) -> compute (compute.py, targets.py) -> render
(tables.py, markdown.py, plots.py, write.py). OUT_DIR's files are described in raw.py.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reporting import compute, raw, tables, write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def count(meta_path: str) -> int:
    counts = raw.access_log_counts(raw.read_meta(meta_path))
    if counts is None:
        return 1
    with open(meta_path[:-len(".meta")] + ".access.json", "w") as f:
        json.dump(counts, f)
    return 0


def progress(meta_path: str) -> int:
    run = raw.read_run(meta_path)
    print(tables.progress_line(compute.Measured(run, compute.figures(run))), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("progress").add_argument("meta")
    sub.add_parser("count").add_argument("meta")
    w = sub.add_parser("write")
    w.add_argument("out_dir")
    w.add_argument("--results", default=str(ROOT / "bench" / "results"))
    w.add_argument("--readme")
    args = parser.parse_args()
    if args.cmd == "count":
        return count(args.meta)
    if args.cmd == "progress":
        return progress(args.meta)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    return write.write_report(args.out_dir, args.results, args.readme)


if __name__ == "__main__":
    sys.exit(main())
