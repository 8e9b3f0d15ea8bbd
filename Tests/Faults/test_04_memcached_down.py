"""Case 4: memcached stopped mid-load, then started.

No request fails (the views come from Postgres, X-Cache BYPASS), p99 stays bounded, and
caching resumes once memcached is back (a fresh user's view: MISS, then HIT).
"""
import time

from load import Load

import faultkit as c
import support as s

DOWN_S = 4.0
P99_BOUND_MS = 1000.0     # absolute bound on a 2-CPU CI box with a debug build
MAX_BOUND_MS = 3000.0


def test_memcached_down_mid_load(stack, pool, mix, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()
    resumed_s = None
    with Load(stack.base_url, mix, name="4 memcached down 4 s", duration=12,
              connections=c.CONNECTIONS) as load:
        load.sleep_until(2.0)
        c.run_stack_sh("mc-stop")
        time.sleep(DOWN_S)
        c.run_stack_sh("mc-start")
        started_at = time.monotonic()
        while time.monotonic() - started_at < 8:
            tok = c.fresh_token(stack)
            first, _ = c.fresh_get(stack, s.OPEN, tok)
            second, _ = c.fresh_get(stack, s.OPEN, tok)
            if (first.headers.get("X-Cache"), second.headers.get("X-Cache")) == ("MISS", "HIT"):
                resumed_s = time.monotonic() - started_at
                break
            time.sleep(0.1)
    after = pool.workers(sup)
    events = log.events()
    r = record(load.result, down_s=DOWN_S, bypass=load.result.cache.get("BYPASS", 0),
               caching_resumed_in_s=None if resumed_s is None else round(resumed_s, 3),
               baseline_p99_ms=c.BASELINE.get("p99_ms"), workers_restarted=len(events.crashed),
               workers_recycled=len(events.recycled))

    assert r.failed == 0, r.describe()
    c.assert_no_upstream_problems(r)
    assert r.cache.get("BYPASS", 0) > 0, "no BYPASS while memcached was down"
    assert r.p99_ms <= P99_BOUND_MS and r.max_ms <= MAX_BOUND_MS, r.describe()
    assert resumed_s is not None, "caching did not resume within 8 s of mc-start"
    c.no_restart(before, after, log)          # no worker is restarted for a memcached outage
    # And every worker caches again: consecutive fresh users are MISS (not BYPASS).
    def all_caching():
        return all(c.fresh_get(stack, s.OPEN, c.fresh_token(stack))[0].headers.get("X-Cache")
                   == "MISS" for _ in range(4 * pool.size))
    s.wait_until(all_caching, timeout=10, interval=0.5, what="every worker to cache again")
