#!/usr/bin/env python3
"""One line that counts passed, failed and skipped tests over every suite of `make test`.

    scripts/test-summary.py RESULTS_DIR [--outcome NAME=passed|failed ...]

Reads every JUnit XML file in RESULTS_DIR (pytest's --junitxml; Swift Testing's report from
`swift test --xunit-output`) and every `*.xctest.log`, the console output of `swift test`, for
XCTest (SwiftPM writes XCTest's JUnit report only with --parallel). A suite that has no report
(the fuzzer) is counted as one case with --outcome. Prints, for example,

    tests: 645 passed, 0 failed, 0 skipped (swift-swift-testing 53, swift 36, integration 555, ...)

Exit status 1 when a case failed or errored, or when one was skipped and CI=true (a bare machine
must run everything: a skip there means a missing tool, server or package); else 0.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.passed + other.passed, self.failed + other.failed,
                      self.skipped + other.skipped)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


def count_junit(path: Path) -> Counts:
    """Counts the <testcase> elements of one JUnit XML file by their first child: <failure> or
    <error> is failed, <skipped> is skipped, none is passed."""
    passed = failed = skipped = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
    return Counts(passed, failed, skipped)


# corelibs XCTest: "Test Case 'Suite.testName' passed (0.002 seconds)"
XCTEST_CASE = re.compile(r"^Test Case '[^']+' (passed|failed|skipped) \(", re.MULTILINE)


def count_xctest_log(path: Path) -> Counts:
    outcomes = XCTEST_CASE.findall(path.read_text(errors="replace"))
    return Counts(outcomes.count("passed"), outcomes.count("failed"), outcomes.count("skipped"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--outcome", action="append", default=[], metavar="NAME=passed|failed")
    args = parser.parse_args()

    suites: dict[str, Counts] = {}
    for path in sorted(args.results.glob("*.xml")):
        try:
            suites[path.stem] = count_junit(path)
        except (ET.ParseError, OSError) as exc:
            print(f"tests: cannot read {path}: {exc}", file=sys.stderr)
            suites[path.stem] = Counts(failed=1)
    for path in sorted(args.results.glob("*.xctest.log")):
        suites[path.name.removesuffix(".xctest.log")] = count_xctest_log(path)
    for item in args.outcome:
        name, _, outcome = item.partition("=")
        if outcome not in ("passed", "failed"):
            parser.error(f"--outcome {item}: want NAME=passed or NAME=failed")
        suites[name] = Counts(passed=1) if outcome == "passed" else Counts(failed=1)

    total = sum(suites.values(), Counts())
    per_suite = ", ".join(f"{name} {c.total}" for name, c in suites.items())
    print(f"tests: {total.passed} passed, {total.failed} failed, {total.skipped} skipped"
          f" ({per_suite or 'no suites ran'})")
    if os.environ.get("CI") == "true" and total.skipped:
        print("tests: CI=true and tests were skipped: every test must run on a bare machine",
              file=sys.stderr)
        return 1
    return 1 if total.failed or not suites else 0


if __name__ == "__main__":
    sys.exit(main())
