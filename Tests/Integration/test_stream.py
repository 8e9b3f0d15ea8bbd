"""GET /api/v1/stream — the live stream through nginx and nchan (docs/design/live-stream.md):
a commit reaches the user's open streams, never another user's; the stream ends with its token;
a reconnect is resynced; the publisher and the subscriber location are out of clients' reach."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest
import requests

import support as s
from sse import open_stream

STREAM = "/api/v1/stream"


def stream_for(stack, token, **headers):
    return open_stream(stack.base_url, STREAM, headers={**s.bearer(token), **headers})


def hear_a_commit(stream, rows, user, equity=1000, keep_open=False):
    """The `changed` event an open stream of `user` gets after a commit for them (a 0 %
    drawdown: no guard event first); the stream is closed afterwards unless `keep_open`."""
    try:
        assert stream.status == 200
        time.sleep(0.2)  # the supervisor has the registration (it arrives by NOTIFY)
        rows.snapshot(user, equity, equity)
        event = stream.next_event(timeout=2)
        assert event is not None and event.event == "changed" and event.id, event
        return event
    finally:
        if not keep_open:
            stream.close()


@pytest.mark.smoke
def test_a_commit_reaches_the_users_open_stream(stack, token, make_user, rows):
    user = make_user()
    stream = stream_for(stack, token(user))
    try:
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store" and stream.headers.get("x-request-id")
        time.sleep(0.2)  # the supervisor has the registration (it arrives by NOTIFY)
        started = time.monotonic()
        rows.snapshot(user, 1000, 1000)
        event = stream.next_event(timeout=2)
        assert event is not None, "no event within 2 s of the commit"
        assert event.event == "changed" and event.id
        assert "/api/v1/guards/status" in json.loads(event.data)["views"]
        assert time.monotonic() - started < 1.0
    finally:
        stream.close()


def test_a_user_never_receives_another_users_events(stack, token, make_user, rows):
    a, b = make_user(), make_user()
    stream_a, stream_b = stream_for(stack, token(a)), stream_for(stack, token(b))
    try:
        time.sleep(0.2)
        for _ in range(3):
            rows.snapshot(a, 1000, 1000)
        received = [stream_a.next_event(timeout=2) for _ in range(3)]
        assert all(e is not None and e.event == "changed" for e in received), received
        assert stream_b.next_event(timeout=1) is None and not stream_b.ended
        rows.snapshot(b, 20, 20)
        assert stream_b.next_event(timeout=2).event == "changed"
        assert stream_a.next_event(timeout=0.5) is None
    finally:
        stream_a.close()
        stream_b.close()


def test_the_stream_ends_when_its_token_expires(stack, token, make_user):
    user = make_user()
    stream = stream_for(stack, token(user, exp=int(time.time()) + 12))
    try:
        assert stream.status == 200
        started = time.monotonic()
        assert stream.wait_for_end(timeout=16), "the stream outlived its token"
        assert time.monotonic() - started > 8
    finally:
        stream.close()
    # Reconnecting with the expired token is refused.
    again = stream_for(stack, token(user, exp=int(time.time()) - 1))
    assert again.status == 401 and json.loads(again.body)["error"] == "unauthorized"


def test_a_token_about_to_expire_cannot_open_a_stream(stack, token, make_user):
    stream = stream_for(stack, token(make_user(), exp=int(time.time()) + 5))
    assert stream.status == 401
    assert "expires in less than 10 s" in json.loads(stream.body)["message"]


def test_a_reconnect_resumes_from_its_last_event_id_with_what_it_missed(stack, token, make_user, rows):
    user = make_user()
    jwt = token(user)
    first = hear_a_commit(stream_for(stack, jwt), rows, user)
    rows.snapshot(user, 1001, 1001)  # while disconnected
    time.sleep(0.3)
    again = stream_for(stack, jwt, **{"Last-Event-ID": first.id})
    try:
        missed = again.next_event(timeout=2)
        assert missed is not None and missed.event == "changed" and missed.id != first.id, missed
        rows.snapshot(user, 1002, 1002)
        live = again.next_event(timeout=2)
        assert live is not None and live.event == "changed" and live.id not in (first.id, missed.id)
    finally:
        again.close()


def test_a_reconnect_with_an_id_nchan_does_not_hold_is_resynced(stack, token, make_user, rows):
    user = make_user()
    jwt = token(user)
    stream = stream_for(stack, jwt)
    time.sleep(0.2)
    rows.snapshot(user, 1000, 1000)
    assert stream.next_event(timeout=2).event == "changed"
    stream.close()
    for foreign in ("1796000000:0", "not-an-id", "1796000000:[0],-"):
        again = stream_for(stack, jwt, **{"Last-Event-ID": foreign})
        try:
            event = again.next_event(timeout=5)
            assert event is not None and event.event == "resync", (foreign, event)
        finally:
            again.close()


def test_a_reconnect_with_last_event_id_is_resynced(stack, token, make_user):
    stream = stream_for(stack, token(make_user()), **{"Last-Event-ID": "1796000000:0"})
    try:
        event = stream.next_event(timeout=5)
        assert event is not None and event.event == "resync"
        assert event.id == "" and 1000 <= event.retry < 2000
        assert stream.wait_for_end(timeout=5)
    finally:
        stream.close()


@pytest.mark.parametrize("headers,status", [
    ({}, 401),
    ({"Authorization": "Bearer not-a-jwt"}, 401),
])
def test_a_stream_needs_a_valid_token(stack, headers, status):
    stream = open_stream(stack.base_url, STREAM, headers=headers)
    assert stream.status == status
    body = json.loads(stream.body)
    assert body["error"] == "unauthorized" and body["request_id"]


def test_only_get_opens_a_stream(stack, token, make_user):
    resp = requests.post(stack.base_url + STREAM, headers=s.bearer(token(make_user())), timeout=5)
    s.assert_error(resp, 405, "method_not_allowed")


def test_conditional_headers_are_refused_before_nchan_sees_them(stack, token, make_user):
    for header in ({"If-None-Match": '"x"'}, {"If-Modified-Since": "Tue, 01 Dec 2026 00:00:00 GMT"}):
        stream = stream_for(stack, token(make_user()), **header)
        assert stream.status == 400, header


def test_the_subscriber_location_is_internal_and_the_publisher_not_served_over_http(stack, token, make_user):
    channel = "t." + "0" * 32
    assert requests.get(stack.base_url + "/_stream/" + channel, timeout=5).status_code == 404
    for method in ("GET", "POST", "DELETE"):
        assert requests.request(method, stack.base_url + "/pub/" + channel, data=b"x", timeout=5).status_code in (404, 405)


def test_only_root_and_the_pool_may_reach_the_publisher_socket(stack):
    path = stack["NCHAN_PUBLISH_SOCKET"]
    directory = os.stat(os.path.dirname(path))
    assert oct(directory.st_mode & 0o777) == "0o750" and directory.st_uid == 0
    import grp
    assert grp.getgrgid(directory.st_gid).gr_name == "trading-api"
    # As nobody: the directory keeps the 0666 socket out of reach.
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            os._exit(1)
        except PermissionError:
            os._exit(0)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.faults
def test_streams_outlive_a_supervisor_restart_and_still_end_with_their_token(stack, token, make_user, rows):
    """The open channels are rows of live_streams: a new supervisor reads them, publishes to them
    and deletes each at its token's exp."""
    import signal
    user = make_user()
    stream = stream_for(stack, token(user, exp=int(time.time()) + 20))
    try:
        assert stream.status == 200
        supervisor = s.stack_pids()["pool"][0]
        os.kill(supervisor, signal.SIGKILL)  # its workers follow it (PR_SET_PDEATHSIG)
        s.wait_until(lambda: "pool" not in s.stack_pids(), timeout=10, what="the supervisor gone")
        s.stack_up(stack)
        time.sleep(0.5)
        rows.snapshot(user, 1000, 1000)
        event = stream.next_event(timeout=3)
        assert event is not None and event.event == "changed", "the restarted supervisor lost the stream"
        assert stream.wait_for_end(timeout=20), "the stream outlived its token after the restart"
    finally:
        stream.close()


SESSION = "/api/v1/session"


def test_a_session_cookie_opens_the_stream_for_a_browser(stack, token, make_user, rows):
    """EventSource cannot send Authorization: POST /api/v1/session puts the token in a cookie
    only the stream receives, never in a URL."""
    user = make_user()
    jwt = token(user, exp=int(time.time()) + 600)
    resp = requests.post(stack.base_url + SESSION, headers=s.bearer(jwt), timeout=5)
    assert resp.status_code == 204, resp.text
    cookie = resp.headers["Set-Cookie"]
    attributes = [a.strip() for a in cookie.split(";")]
    assert attributes[0] == f"trading_api_stream={jwt}"
    assert {"HttpOnly", "SameSite=Strict", "Path=/api/v1/stream"} <= set(attributes)
    assert "Secure" not in attributes  # plain HTTP here; over TLS it is Secure
    max_age = int(next(a for a in attributes if a.startswith("Max-Age=")).split("=")[1])
    assert 590 <= max_age <= 600

    hear_a_commit(open_stream(stack.base_url, STREAM, headers={"Cookie": f"theme=dark; trading_api_stream={jwt}"}),
                          rows, user)


def test_the_session_cookie_opens_nothing_but_the_stream(stack, token, make_user):
    jwt = token(make_user())
    resp = requests.get(stack.base_url + s.GUARDS, headers={"Cookie": f"trading_api_stream={jwt}"}, timeout=5)
    s.assert_error(resp, 401, "unauthorized")
    bad = open_stream(stack.base_url, STREAM, headers={"Cookie": "trading_api_stream=not-a-jwt"})
    assert bad.status == 401


def test_a_session_needs_a_token_and_deleting_it_clears_the_cookie(stack):
    s.assert_error(requests.post(stack.base_url + SESSION, timeout=5), 401, "unauthorized")
    resp = requests.delete(stack.base_url + SESSION, timeout=5)
    assert resp.status_code == 204
    assert resp.headers["Set-Cookie"].startswith("trading_api_stream=; Path=/api/v1/stream; Max-Age=0;")
    s.assert_error(requests.get(stack.base_url + SESSION, timeout=5), 405, "method_not_allowed")


def test_a_thousand_users_each_hear_only_their_own_commits_under_load(stack, db, token, make_user):
    """Two known users with three tabs each and 1,000 random users with one stream each, from 60
    loopback addresses (under STREAMS_PER_ADDR each): commits for one known user and for 100 of
    the random ones while four clients read views. Every stream of a committed user hears
    `changed`; no other stream hears anything (event data names no user: a leak would show as an
    event on a stream whose user did not commit)."""
    import asyncio
    import random
    import threading
    from urllib.parse import urlsplit

    from sse import next_event_async, open_async

    known = [make_user(), make_user()]
    randoms = [s.new_uuid() for _ in range(1000)]
    db.execute("INSERT INTO users (id, email) SELECT u, 'stream-' || u || '@example.test' FROM unnest(%s::uuid[]) u",
               (randoms,))
    committed = {known[0], *random.sample(randoms, 100)}
    owners = [u for u in known for _ in range(3)] + randoms
    url = urlsplit(stack.base_url)

    stop = threading.Event()
    answers = []

    def reader_load():
        while not stop.is_set():
            user = random.choice(randoms)
            answers.append(requests.get(stack.base_url + s.GUARDS, headers=s.bearer(token(user)), timeout=10).status_code)

    async def run():
        gate = asyncio.Semaphore(100)

        async def one(index, user):
            async with gate:
                return await open_async(url.hostname, url.port, token(user, exp=int(time.time()) + 300),
                                        source=f"127.0.2.{index % 60 + 1}")

        streams = await asyncio.gather(*(one(i, u) for i, u in enumerate(owners)))
        await asyncio.sleep(1)  # every registration reached the supervisor
        load = [threading.Thread(target=reader_load) for _ in range(4)]
        for thread in load:
            thread.start()
        try:
            for user in committed:
                await asyncio.to_thread(
                    db.execute, "INSERT INTO equity_snapshots (user_id, equity, peak_equity, recorded_at)"
                                " VALUES (%s, 1000, 1000, now())", (user,))

            async def heard(reader):
                try:
                    return await asyncio.wait_for(next_event_async(reader), timeout=4)
                except asyncio.TimeoutError:
                    return None

            events = await asyncio.gather(*(heard(reader) for reader, _ in streams))
        finally:
            stop.set()
            for thread in load:
                thread.join()
            for _, writer in streams:
                writer.close()
        return events

    try:
        events = asyncio.run(run())
        wrong = [(owner, event) for owner, event in zip(owners, events) if (owner in committed) != (event == "changed")]
        assert not wrong, f"{len(wrong)} streams heard wrongly, e.g. {wrong[:5]}"
        # The load was real (answered); a stack with tight per-address limits answers some 429.
        assert 200 in answers and set(answers) <= {200, 429}, f"the reads under load: {sorted(set(answers))}"
    finally:
        db.execute("DELETE FROM equity_snapshots WHERE user_id = ANY(%s::uuid[])", (randoms,))
        db.execute("DELETE FROM live_streams WHERE user_id = ANY(%s::uuid[])", (randoms,))
        db.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (randoms,))


def test_a_critical_guard_and_a_drawdown_crossing_are_announced_as_guard_events(stack, token, make_user, rows):
    user = make_user()
    stream = stream_for(stack, token(user))
    try:
        time.sleep(0.2)
        rows.guard(user, symbol="XAUUSD", level="critical", price_gap_pct=4.2)
        event = stream.next_event(timeout=2)
        assert event is not None and event.event == "guard", event
        alert = json.loads(event.data)["market_guard_alert"]
        assert alert["symbol"] == "XAUUSD" and alert["alert_type"] == "critical" and alert["should_close_positions"]
        assert stream.next_event(timeout=2).event == "changed"

        rows.guard(user, symbol="EURUSD", level="warning")  # not critical: no guard event
        assert stream.next_event(timeout=2).event == "changed"

        rows.snapshot(user, 7900, 10000, age=1)  # 21 % below the peak: critical
        event = stream.next_event(timeout=2)
        assert event is not None and event.event == "guard", event
        drawdown = json.loads(event.data)["drawdown_guard"]
        assert drawdown["alert_type"] == "critical" and drawdown["current_drawdown_pct"] == 21
        assert drawdown["should_close_all"] is True
        assert stream.next_event(timeout=2).event == "changed"
    finally:
        stream.close()


@pytest.mark.faults
def test_an_nginx_reload_ends_the_streams_and_a_reconnect_is_resynced_then_live(stack, token, make_user, rows):
    """A reload empties nchan (its state lives in memory a reload resets): open streams end, a
    client reconnecting with its last id gets `resync` (nchan no longer holds the id), and the
    stream it opens next carries events again."""
    user = make_user()
    jwt = token(user)
    stream = stream_for(stack, jwt)
    try:
        last = hear_a_commit(stream, rows, user, keep_open=True)
        s.run_stack_sh("reload-nginx")
        assert stream.wait_for_end(timeout=15), "the stream outlived the reload"
    finally:
        stream.close()
    s.wait_nginx_settled()
    again = stream_for(stack, jwt, **{"Last-Event-ID": last.id})
    try:
        event = again.next_event(timeout=5)
        assert event is not None and event.event == "resync"
    finally:
        again.close()
    hear_a_commit(stream_for(stack, jwt), rows, user, equity=1001)
