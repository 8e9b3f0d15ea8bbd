"""Case 7: workers recycled under load. For this case the pool runs with MAX_REQUESTS=3000:
a worker that has served that many takes no new connection, goes on answering on the
connections nginx keeps until nginx closes them (keepalive_requests, keepalive_timeout), exits 0
and is replaced at once. No request fails, nginx logs no upstream failure, and every exit is a
recycling one. Afterwards the pool runs with the stack's own settings again."""
from load import Load

import faultkit as c

MAX_REQUESTS = 3000


def test_recycling_under_load_loses_no_request(stack, pool, mix, record):
    c.stack_up(stack, MAX_REQUESTS=str(MAX_REQUESTS), **c.LIFTED_LIMITS)
    try:
        pool.wait_full()
        log = c.PoolLog()
        with Load(stack.base_url, mix, name=f"7 recycling (MAX_REQUESTS={MAX_REQUESTS})", duration=8,
                  connections=c.CONNECTIONS) as load:
            pass
        events = log.events()
        r = record(load.result, recycled=len(events.recycled), failed=load.result.failed)
    finally:
        c.stack_up(stack, **c.LIFTED_LIMITS)

    assert len(events.recycled) >= pool.size, f"expected every worker recycled at least once: {events}"
    assert not events.crashed, f"workers were restarted: {events.crashed}"
    assert r.failed == 0 and r.socket_errors == 0, r.describe()
    c.assert_no_upstream_problems(r)
