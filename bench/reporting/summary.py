"""The one summary line of bench/load.lua, the wrk driver of the benchmark and the fault suite.

    LOAD_SUMMARY {"requests":…,"duration_us":…,"bytes":…,"latency_us":{…},"status":{…},
                  "x_cache":{…},"socket_errors":{…},"wrk_status_errors":…,"error_json":…,
                  "unavailable_json":…,"samples":[…]}

bench/reporting/raw.py reads it for the report, Tests/Faults/load.py for the fault cases.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

MARK = "LOAD_SUMMARY "
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


@dataclass(frozen=True)
class LoadSummary:
    """What wrk and bench/load.lua counted in one run. Latencies in ms, durations in s."""
    requests: int                   # completed responses
    duration_s: float
    bytes: int                      # read from the sockets, headers included
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    stdev_ms: float
    statuses: dict[int, int]        # HTTP status -> responses
    x_cache: dict[str, int]         # X-Cache value ("none": no header) -> responses
    socket_errors: dict[str, int]   # connect/read/write/timeout -> count (wrk's)
    wrk_status_errors: int          # wrk's own count of statuses above 399
    error_json: int                 # answers >= 300 with a JSON error body (error, request_id)
    unavailable_json: int           # 503 answers with {"error":"unavailable",…}
    samples: tuple[str, ...]        # "STATUS first-160-bytes-of-body" of a few answers >= 300

    @property
    def rps(self) -> float | None:
        return self.requests / self.duration_s if self.duration_s else None

    @property
    def non2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def parse_summary(stdout: str) -> LoadSummary | None:
    """The last LOAD_SUMMARY line of wrk's output, or None when there is none."""
    data = None
    for line in stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
    if data is None:
        return None
    latency = {k: v / 1000 for k, v in data["latency_us"].items()}
    return LoadSummary(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        bytes=int(data["bytes"]),
        p50_ms=latency["p50"], p90_ms=latency["p90"], p99_ms=latency["p99"],
        max_ms=latency["max"], mean_ms=latency["mean"], stdev_ms=latency["stdev"],
        statuses={int(k): int(v) for k, v in data["status"].items()},
        x_cache={str(k): int(v) for k, v in data["x_cache"].items()},
        socket_errors={k: int(data["socket_errors"].get(k, 0)) for k in SOCKET_ERRORS},
        wrk_status_errors=int(data["wrk_status_errors"]),
        error_json=int(data["error_json"]),
        unavailable_json=int(data["unavailable_json"]),
        samples=tuple(data["samples"]),
    )
