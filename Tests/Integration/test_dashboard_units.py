"""The dashboard's pure modules, run in chromium as the page loads them (ES modules from the
stack's nginx): back-off delays, number and time formatting, token claims, the API client's
error kinds. No test runner of its own: the browser is the JavaScript engine that matters."""
from __future__ import annotations

import pytest

import support as s


@pytest.fixture
def run_module(browser, stack):
    """run_module("/js/x.js", "body using m") → the value `body` returns, with m the module."""
    browser.get(stack.base_url + "/favicon.svg")  # the page's origin, without starting the app

    def _run(path: str, body: str):
        result = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"import({path!r}).then(async (m) => {{ {body} }})"
            ".then((value) => done({value}), (e) => done({error: String(e)}));")
        assert "error" not in result, result["error"]
        return result["value"]
    return _run


def test_backoff_doubles_with_jitter_to_30_s_and_honours_retry_after(run_module):
    delays = run_module("/js/backoff.js", """
        const low = new m.Backoff({random: () => 0}), high = new m.Backoff({random: () => 0.999999});
        const lows = [], highs = [];
        for (let i = 0; i < 8; i++) { lows.push(low.next()); highs.push(high.next()); }
        const floor = new m.Backoff({random: () => 0}).next(7);
        low.reset();
        return {lows, highs, floor, afterReset: low.next()};""")
    assert delays["lows"] == [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]
    assert [round(d) for d in delays["highs"]] == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    assert delays["floor"] == 7000            # Retry-After: 7 is a floor
    assert delays["afterReset"] == 500


def test_money_is_signed_so_colour_is_never_the_only_signal(run_module):
    shown = run_module("/js/format.js", """
        return [m.signedMoney(535.5), m.signedMoney(-29.33), m.signedMoney(0), m.signedMoney(null),
                m.amount(59557.85), m.percent(13.39), m.percent(null), m.raw(148.093),
                m.signClass(-1), m.signClass(2), m.signClass(0)];""")
    assert shown == ["+535.50", "-29.33", "0.00", "–", "59,557.85", "13.39 %", "–", "148.093",
                     "negative", "positive", "zero"]


def test_ages_and_remaining_life_read_as_a_person_says_them(run_module):
    shown = run_module("/js/format.js", """
        const now = Date.parse('2026-12-01T12:00:00Z');
        const ago = (s) => m.age(new Date(now - s * 1000).toISOString(), now);
        return [ago(0), ago(89), ago(90), ago(3600), ago(40 * 3600), m.remaining(40),
                m.remaining(3 * 3600 + 5 * 60), m.remaining(0)];""")
    assert shown == ["0 s ago", "89 s ago", "2 min ago", "60 min ago", "2 d ago", "in 40 s",
                     "in 3 h 5 min", "expired"]


def test_the_event_stream_parser_reads_what_eventsource_would(run_module):
    out = run_module("/js/sse.js", r"""
        const chunks = [': hi\n\n', 'event: changed\nid: 17:0\ndata: {"views":', '["/a"]}\n\n',
                        'retry: 1500\r', '\nevent: resync\r\nid:\r\ndata:\r\n\r\n', 'data: one\ndata:two\n',
                        '\n: ka\n\n', 'event: cut\ndata: never ended'];
        let heard = 0;
        const body = new ReadableStream({start(c) {
          for (const x of chunks) c.enqueue(new TextEncoder().encode(x));
          c.close();
        }});
        const events = [];
        for await (const e of m.events(body, () => heard++)) events.push(e);
        return {events, heard};""")
    assert out["events"] == [
        {"event": "changed", "data": '{"views":["/a"]}', "id": "17:0", "retry": None},
        {"event": "resync", "data": "", "id": "", "retry": 1500},
        {"event": "message", "data": "one\ntwo", "id": None, "retry": None},
    ]  # comments skipped, an event cut off by the stream's end never dispatched
    assert out["heard"] >= 1


def test_token_claims_are_read_but_a_non_jwt_is_none(run_module):
    claims = run_module("/js/api.js", """
        const part = (o) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\\+/g, '-').replace(/\\//g, '_');
        const token = part({alg: 'HS256'}) + '.' + part({sub: 'u-1', exp: 2000000000, x: '>>>???'}) + '.sig';
        return [m.tokenClaims(token), m.tokenClaims('hello'), m.tokenClaims('a.b.c'), m.tokenClaims('a.bnVsbA.c')];""")
    assert claims[0] == {"sub": "u-1", "exp": 2000000000, "x": ">>>???"}
    assert claims[1:] == [None, None, None]


def test_the_api_client_revalidates_and_sorts_errors_into_what_the_page_does(run_module, token, make_user, rows):
    user = make_user()
    rows.sync(user, s.unique_ticket())
    out = run_module("/js/api.js", f"""
        const api = new m.ApiClient({token(user)!r});
        const first = await api.view('/api/v1/positions/open');
        const second = await api.view('/api/v1/positions/open');   // If-None-Match: 304
        const kindOf = (p) => p.then(() => 'ok', (e) => [e.kind, e.status, e.message]);
        return {{
          first: first.changed, second: second.changed, same: second.body === first.body,
          total: second.body.total_positions,
          missing: await kindOf(api.view('/api/v1/positions/1')),
          bad: await kindOf(api.view('/api/v1/positions/open?symbol=a%20b')),
          refused: await kindOf(new m.ApiClient('x.y.z').view('/api/v1/guards/status')),
        }};""")
    assert (out["first"], out["second"], out["same"], out["total"]) == (True, False, True, 1)
    assert out["missing"][:2] == ["not_found", 404]
    assert out["bad"][:2] == ["bad_request", 400]
    assert out["refused"][:2] == ["unauthorized", 401] and out["refused"][2]
