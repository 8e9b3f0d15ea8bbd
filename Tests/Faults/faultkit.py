"""Helpers of the fault suite: processes of the pool, stack.sh with extra environment,
single requests on fresh connections. (Fixtures are in conftest.py.)"""
from __future__ import annotations

import os
import re
import time

import requests

# Tests/Integration/support.py; re-exported for the cases
from support import children_of, run_stack_sh, session_members  # noqa: F401

import support as s
from hostile import PoolEvents, PoolLog  # noqa: F401  (re-exported for the cases)

CONNECTIONS = int(os.environ.get("FAULT_CONNECTIONS", "64"))
USERS = int(os.environ.get("FAULT_USERS", "400"))
# During the suite the stack's rate limits are lifted (one client address at ~10k requests/s
# would otherwise be limited): conftest.lifted_rate_limits. Pass these to any reload-nginx.
LIMIT_KEYS = s.RATE_LIMIT_KEYS
LIFTED_LIMITS = {"RATE_LIMITS_LIFTED": "1"}   # scripts/lib/config.sh
# The worker's statement_timeout (PG_STATEMENT_TIMEOUT_MS; the service's default is 2000).
STATEMENT_TIMEOUT_S = int(os.environ.get("PG_STATEMENT_TIMEOUT_MS", "2000")) / 1000

RESULTS: list = []          # LoadResult of every case, in order
BASELINE: dict = {}         # case 0's numbers (p99_ms, rps), the yardstick of the others


# --------------------------------------------------------------------------- processes


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


class Pool:
    """The pool supervisor of this RUN_DIR (by the PID stack.sh recorded) and its workers."""

    def __init__(self, stack_sh, workers: int):
        self._stack_sh = stack_sh
        self.size = workers

    @property
    def supervisor(self) -> int:
        return int(self._stack_sh("pool-pid").strip().split()[-1])

    def workers(self, supervisor: int | None = None) -> set[int]:
        return children_of(supervisor or self.supervisor)

    def wait_full(self, timeout: float = 10) -> set[int]:
        sup = self.supervisor
        return s.wait_until(lambda: (w := self.workers(sup)) and len(w) == self.size and w,
                            timeout=timeout, interval=0.05,
                            what=f"the pool to run {self.size} workers")


stack_up = s.stack_up  # support.py (the integration tests restart the pool too)


def fresh_get(stack, path=s.STATUS, tok=None, timeout=15):
    """One request on a new connection; returns (response, seconds)."""
    started = time.monotonic()
    r = requests.get(stack.base_url + path, headers=s.bearer(tok) if tok else {}, timeout=timeout)
    return r, time.monotonic() - started


def fresh_token(stack) -> str:
    """A valid token of a new user (no rows, nothing cached: the view needs Postgres)."""
    return s.make_jwt(s.claims(s.new_uuid()), stack.secret)


def no_restart(before: set[int], after: set[int], log: PoolLog) -> PoolEvents:
    """Asserts that no worker was restarted between `before` and `after`: the supervisor
    logged no abnormal exit, and every worker that is gone was recycled (MAX_REQUESTS
    reached: exit 0, replaced at once; normal operation, not a restart). Returns the events."""
    events = log.events()
    assert not events.crashed, f"workers were restarted: {events.crashed}"
    unexplained = before - after - set(events.recycled)
    assert not unexplained, f"workers {sorted(unexplained)} are gone without a recycling exit"
    return events


# --------------------------------------------------------------------------- nginx's error log

# What nginx logs when a FastCGI connection fails under it: a reset, a close mid-response, a
# refused connect, a timeout. With kept-alive connections a worker must never cause one except
# by dying (case 1) or by the pool being stopped (case 2b).
UPSTREAM_PROBLEMS = re.compile(
    r"upstream prematurely closed|recv\(\) failed|readv\(\) failed|writev\(\) failed|send\(\) failed"
    r"|connect\(\) to .* failed|upstream timed out|no live upstreams|reset by peer")


class NginxErrorLog:
    """The stack's nginx error log from a mark on: upstream_problems() counts the lines above."""

    def __init__(self):
        self.path = s.run_dir() / "logs" / "nginx-error.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def upstream_problems(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if UPSTREAM_PROBLEMS.search(line)]


def assert_no_upstream_problems(result) -> None:
    """For the cases where no request may fail under nginx: `record` counted the lines."""
    assert result.notes["upstream_errors"] == 0, \
        f"nginx logged upstream failures: {result.notes.get('upstream_error_sample')}"
