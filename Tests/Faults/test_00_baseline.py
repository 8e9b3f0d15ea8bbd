"""Case 0, the yardstick: the same wrk load with no fault. Zero failures (so the rate limits
and the harness do not interfere with the fault cases), and the p99 the later cases are
compared with."""
from load import Load

import faultkit as c


def test_baseline_load_has_no_failures(stack, mix, record):
    with Load(stack.base_url, mix, name="0 baseline (no fault)", duration=6,
              connections=c.CONNECTIONS) as load:
        pass
    r = record(load.result)
    assert r.requests > 500, r.line()
    assert r.failed == 0, r.describe()
    c.assert_no_upstream_problems(r)
    c.BASELINE["p99_ms"] = r.p99_ms
    c.BASELINE["rps"] = r.rps
