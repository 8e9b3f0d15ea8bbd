"""Case 1: `kill -9` of one worker mid-load.

The supervisor replaces it within 1 s, the pool is back to WORKERS, and the only requests
that fail are the ones that worker had in hand: one per request loop (FCGI_LOOPS). Requests on
its idle kept-alive connections are retried by nginx on a fresh connection
(`fastcgi_next_upstream error`), and connections waiting in the socket's backlog belong to no
worker and are served by the others. A failed request is nginx's JSON 502, never a hang or a
socket error.
"""
import os
import signal
import time

from load import Load

import faultkit as c
import support as s



def request_loops(pid: int) -> int:
    """A worker's request loops: its threads but the main one (which only waits for a stop)."""
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return threads - 1


def test_kill_9_one_worker_mid_load(stack, pool, mix, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()
    victim = max(before)
    in_flight_bound = request_loops(victim)   # requests one worker can hold at once
    restart_s = None
    with Load(stack.base_url, mix, name="1 kill -9 one worker", duration=8,
              connections=c.CONNECTIONS) as load:
        load.sleep_until(3.0)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while time.monotonic() - killed_at < 5:
            now = pool.workers(sup)
            if victim not in now and len(now) == pool.size and now - before:
                restart_s = time.monotonic() - killed_at
                break
            time.sleep(0.005)
    after = pool.workers(sup)
    events = log.events()
    r = record(load.result, killed=victim, replaced_in_s=None if restart_s is None else round(restart_s, 3),
               failed=load.result.failed, in_flight_bound=in_flight_bound)

    assert pool.supervisor == sup and c.alive(sup), "the supervisor died with its worker"
    assert restart_s is not None, f"no replacement worker within 5 s (workers now {sorted(after)})"
    assert restart_s <= 1.0, f"replacement took {restart_s:.3f}s"
    assert len(after) == pool.size and victim not in after
    assert [pid for pid, _ in events.crashed] == [victim], f"restarts logged: {events.crashed}"
    assert not (before - after - {victim} - set(events.recycled)), "only the killed worker is replaced"
    assert r.socket_errors == 0, r.describe()
    assert r.failed <= in_flight_bound, r.describe()
    assert set(r.statuses) <= {200, 502}, r.describe()
    assert r.error_json == r.non2xx, "every failure is nginx's JSON error body"
    # The new worker serves: a burst of uncached requests all succeed.
    for _ in range(2 * pool.size):
        resp, _ = c.fresh_get(stack, s.STATUS, c.fresh_token(stack))
        assert resp.status_code == 200, resp.text
