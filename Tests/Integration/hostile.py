"""Helpers of the hostile-input tests (test_hostile_*.py) and the fault suite: the pool's
worker processes and its log, so a test can prove that nothing it sent crashed a worker.

A worker that served MAX_REQUESTS exits 0 and is replaced ("recycling"): a new pid that is
not a crash. The supervisor logs every worker exit (RUN_DIR/logs/pool.log):
  "worker exited cleanly after 63.1 s; recycling it"            normal
  "worker killed by SIGKILL after 2.0 s; restarting in 100 ms"   a crash or a kill
  "worker exited with status 1 after ...; restarting in ..."     likewise
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import support as s

_PID = re.compile(r"worker\.pid=(\d+)")


@dataclass
class PoolEvents:
    crashed: list[tuple[int, str]] = field(default_factory=list)   # (pid, message)
    recycled: list[int] = field(default_factory=list)


class PoolLog:
    """Worker exits the supervisor logged since `mark()` (None when there is no pool.log)."""

    def __init__(self, path: Path | None = None):
        self.path = path or s.run_dir() / "logs" / "pool.log"
        self.offset = self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return -1

    @property
    def available(self) -> bool:
        return self.offset >= 0

    def mark(self) -> "PoolLog":
        self.offset = self._size()
        return self

    def events(self) -> PoolEvents:
        out = PoolEvents()
        if not self.available:
            return out
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", "replace")
        for line in text.splitlines():
            if "role=supervisor" not in line:
                continue
            pid = int(m.group(1)) if (m := _PID.search(line)) else 0
            if "recycling it" in line:
                out.recycled.append(pid)
            elif "restarting in" in line:
                out.crashed.append((pid, line.split("]", 1)[-1].strip()))
        return out




def pool_workers(stack_sh) -> tuple[int, set[int]]:
    sup = int(stack_sh("pool-pid").strip().split()[-1])
    return sup, s.children_of(sup)


@pytest.fixture(scope="module")
def no_worker_crashes(stack, stack_sh):
    """No hostile input of the module killed a worker: the supervisor logged no abnormal
    worker exit, and it is the same supervisor. (Without a pool.log: the same worker pids,
    which recycling after MAX_REQUESTS could also change.)"""
    log = PoolLog()
    sup_before, workers_before = pool_workers(stack_sh)
    yield
    sup_after, workers_after = pool_workers(stack_sh)
    assert sup_after == sup_before, "the pool supervisor changed during the module"
    if log.available:
        crashed = log.events().crashed
        assert not crashed, f"workers crashed during the module: {crashed} (see {log.path})"
    else:
        assert workers_after == workers_before, (
            f"worker processes changed during the module (a crash?): {workers_before} -> {workers_after}")
