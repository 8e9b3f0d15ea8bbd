"""Case 6: `stack.sh reload-nginx` (nginx -s reload: new nginx workers take the listening
socket, the old ones finish the requests they hold) mid-load. The pool is untouched.

Two runs, because HTTP keep-alive has a race no server can close:
- a: every request on a new connection (`Connection: close`): **no request fails**. A reload
  loses no accepted connection and no request in progress.
- b: keep-alive connections (wrk's default): no request that nginx read fails (no non-2xx),
  but an old nginx worker closes its *idle* kept-alive connections when it exits, and a
  request the client wrote into such a connection in that same instant is lost with the
  connection (wrk: a "read" socket error). The request never reached nginx's HTTP parser,
  let alone the pool; RFC 9112 §9.3.1 lets clients retry it (browsers, curl, requests
  do; wrk does not). It can happen at most once per open connection, so the bound is the
  connection count; the number is reported.
"""
from load import Load

import faultkit as c
import support as s


def nginx_workers() -> set[int]:
    return c.children_of(s.stack_pids()["nginx"][0])


def reload_under_load(stack, mix, name, close):
    old = nginx_workers()
    with Load(stack.base_url, mix, name=name, duration=6, connections=c.CONNECTIONS,
              close=close) as load:
        load.sleep_until(2.5)
        # The suite's lifted limits again, so the reload changes nothing but the workers.
        c.run_stack_sh("reload-nginx", env=c.LIFTED_LIMITS)
    new = nginx_workers()
    assert old and not (old & new), "the reload did not replace nginx's workers"
    return load.result


def test_nginx_reload_mid_load_new_connections(stack, pool, mix, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()
    r = record(reload_under_load(stack, mix, "6a nginx reload (a connection per request)", True))
    c.no_restart(before, pool.workers(sup), log)
    assert r.failed == 0, r.describe()
    c.assert_no_upstream_problems(r)


def test_nginx_reload_mid_load_keepalive(stack, pool, mix, record):
    sup = pool.supervisor
    before = pool.wait_full()
    log = c.PoolLog()
    r = reload_under_load(stack, mix, "6b nginx reload (keep-alive)", False)
    record(r, idle_keepalive_closed_races=r.errors.get("read", 0),
           bound=c.CONNECTIONS)
    c.no_restart(before, pool.workers(sup), log)
    assert r.non2xx == 0, r.describe()
    c.assert_no_upstream_problems(r)
    others = {k: v for k, v in r.errors.items() if k not in ("status", "read") and v}
    assert not others, r.describe()
    assert r.errors.get("read", 0) <= c.CONNECTIONS, r.describe()
