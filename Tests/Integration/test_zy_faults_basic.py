"""Faults the stack must ride through without anyone restarting it: an nginx reload and a
worker process dying. Runs after the ordinary modules (marker `faults`); leaves the stack up.
"""
import os
import signal
import threading
import time

import pytest
import requests

import support as s

pytestmark = pytest.mark.faults




def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def fresh_status(stack, token, session=None):
    """An uncached request that needs the pool and Postgres: a new (unknown) user's status."""
    getter = session or requests
    return getter.get(stack.base_url + s.STATUS, headers=s.bearer(token(s.new_uuid())), timeout=10)


def test_nginx_reload_drops_nothing(stack, stack_sh, token, http):
    """`stack.sh reload-nginx` while a client keeps asking: every request is answered 200,
    and the pool serves the new nginx workers afterwards."""
    stop = threading.Event()
    seen: list = []

    def client():
        while not stop.is_set():
            try:
                resp = fresh_status(stack, token)   # a new connection each time
                seen.append(resp.status_code)
            except requests.RequestException as exc:
                seen.append(repr(exc))
            time.sleep(0.02)

    worker = threading.Thread(target=client, daemon=True)
    worker.start()
    try:
        time.sleep(0.5)
        stack_sh("reload-nginx")
        time.sleep(2.0)
    finally:
        stop.set()
        worker.join(timeout=15)
    http.close()   # the shared session's idle keep-alive connections belonged to old workers
    bad = [x for x in seen if x != 200]
    assert seen and not bad, f"{len(bad)} of {len(seen)} requests failed during reload: {bad[:5]}"
    with requests.Session() as session:
        codes = [fresh_status(stack, token, session).status_code for _ in range(30)]
    assert codes == [200] * 30, codes


def test_pool_replaces_a_killed_worker(stack, stack_sh, token):
    """A worker killed outright is replaced by the pool supervisor; the service keeps
    answering (any error on the way is nginx's JSON 502/504, never a hang)."""
    supervisor = int(stack_sh("pool-pid").strip().split()[-1])
    assert alive(supervisor), f"pool supervisor {supervisor} is not running"
    workers = s.children_of(supervisor)
    assert workers, f"supervisor {supervisor} has no child processes to kill"
    victim = max(workers)
    os.kill(victim, signal.SIGKILL)

    deadline = time.monotonic() + 15
    errors = []
    while time.monotonic() < deadline:
        started = time.monotonic()
        resp = fresh_status(stack, token)
        assert time.monotonic() - started < 5, "a request hung after a worker died"
        if resp.status_code != 200:
            errors.append(resp)
        now_workers = s.children_of(supervisor)
        if victim not in now_workers and len(now_workers) >= len(workers) and resp.status_code == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"pool did not get back to {len(workers)} workers within 15 s "
                    f"(now {sorted(s.children_of(supervisor))}, errors {[e.status_code for e in errors]})")
    assert alive(supervisor), "the supervisor died with its worker"
    for resp in errors:
        s.assert_error(resp, (502, 503, 504), None, secrets=stack.secrets)
    with requests.Session() as session:
        codes = [fresh_status(stack, token, session).status_code for _ in range(30)]
    assert codes == [200] * 30, codes
