"""Case 2 (first half): SIGHUP to the supervisor mid-load is a rolling restart. Every worker
is replaced (one at a time, the new one before the old one stops) and no request fails.
(The SIGTERM half stops the pool, so it is test_99_sigterm.py, the last case.)"""
import os
import signal
import time

from load import Load

import faultkit as c


def test_sighup_replaces_every_worker_without_a_failed_request(stack, pool, mix, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()
    replaced_s = None
    with Load(stack.base_url, mix, name="2a SIGHUP (rolling restart)", duration=10,
              connections=c.CONNECTIONS) as load:
        load.sleep_until(2.0)
        sent = time.monotonic()
        os.kill(sup, signal.SIGHUP)
        while time.monotonic() - sent < 7:
            now = pool.workers(sup)
            if len(now) == pool.size and not (now & before):
                replaced_s = time.monotonic() - sent
                break
            time.sleep(0.01)
    after = pool.workers(sup)
    r = record(load.result, all_replaced_in_s=None if replaced_s is None else round(replaced_s, 2),
               failed=load.result.failed)

    assert c.alive(sup) and pool.supervisor == sup, "SIGHUP must not restart the supervisor"
    assert replaced_s is not None, \
        f"not every worker was replaced within 7 s: before {sorted(before)}, after {sorted(after)}"
    assert len(after) == pool.size and not (after & before)
    assert not log.events().crashed, "SIGHUP replaces workers; none may crash"
    assert r.failed == 0, r.describe()
    c.assert_no_upstream_problems(r)
