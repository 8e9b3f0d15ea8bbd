"""The OpenAPI 3.1 document (docs/openapi.json) against the live stack.

- nginx serves the document at /api/v1/openapi.json, byte for byte, as JSON with a request id.
- schemathesis (property-based, every phase: coverage, fuzzing, stateful) runs against the
  stack through nginx, once with a valid token of a user who has data and once without a
  token, with every check it has: no 5xx (not_a_server_error), every status, content type,
  header and body conforms to the document (status_code_conformance, content_type_conformance,
  response_headers_conformance, response_schema_conformance), invalid input is refused and
  valid input accepted (negative_data_rejection, positive_data_acceptance), wrong methods
  are 405 with Allow, the token is not ignored (ignored_auth), ...
  Bounded: SCHEMATHESIS_MAX_TIME seconds per run (default 40 with a token, 20 without);
  with a token it keeps under the per-token rate limit (--rate-limit).

Needs the `schemathesis` package (Tests/Integration/requirements.txt; its CLI is 4.x).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import support as s

DOC = s.REPO_ROOT / "docs" / "openapi.json"
MAX_TIME = int(os.environ.get("SCHEMATHESIS_MAX_TIME", "40"))


def schemathesis_cmd() -> list[str]:
    # The CLI of this interpreter's environment (.venv/bin), never another one on PATH.
    exe = Path(sys.executable).parent / "schemathesis"
    if exe.is_file():
        return [str(exe)]
    try:
        import schemathesis  # noqa: F401  (installed?)
    except ImportError:
        pytest.fail("schemathesis is not installed: scripts/install-deps.sh (into .venv)",
                    pytrace=False)
    return [sys.executable, "-m", "schemathesis.cli"]


def test_document_is_valid_openapi_3_1():
    doc = json.loads(DOC.read_text())
    assert doc["openapi"].startswith("3.1.")
    paths = set(doc["paths"])
    assert paths == {s.HEALTH, s.STATUS, s.LOGS, s.OPEN, "/api/v1/positions/{ticket}", s.GUARDS,
                     "/api/v1/reconciliation/events", "/api/v1/equity", "/api/v1/stream", "/api/v1/session"}
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for name, schema in doc["components"]["schemas"].items():
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is False, name
            if not name.endswith("Input"):  # answers always carry every field; inputs may omit some
                assert set(schema["required"]) == set(schema["properties"]), name


def test_document_is_served_at_api_v1_openapi_json(stack):
    resp = requests.get(stack.base_url + "/api/v1/openapi.json", timeout=10)
    assert resp.status_code == 200, \
        f"/api/v1/openapi.json: {resp.status_code} {resp.text[:200]} (nginx location not wired?)"
    s.assert_json_response(resp)
    assert resp.content == DOC.read_bytes()


def fuzzable_document() -> Path:
    """The document without the logs view's `cursor`: a cursor is valid only if this service
    signed it for the caller, which no schema can say, so any generated one is (rightly) 400.
    test_logs.py tests cursors, forged ones included. Nor the live stream: it never ends by
    itself (test_stream.py tests it)."""
    doc = json.loads(DOC.read_text())
    del doc["paths"]["/api/v1/stream"]
    logs = doc["paths"]["/api/v1/reconciliation/logs"]["get"]
    logs["parameters"] = [p for p in logs["parameters"] if p.get("name") != "cursor"]
    path = s.run_dir() / "openapi-fuzz.json"
    path.write_text(json.dumps(doc))
    return path


def run_schemathesis(stack, name: str, max_time: int, extra: list[str]) -> None:
    report = s.run_dir() / f"schemathesis-{name}.xml"
    cmd = [*schemathesis_cmd(), "run", str(fuzzable_document()), "--url", stack.base_url,
           "--checks", "all", "--max-examples", "25", "--max-time", str(max_time),
           "--suppress-health-check", "all", "--request-timeout", "10",
           "--report", "junit", "--report-junit-path", str(report),
           "--warnings", "off", *extra]
    env = dict(os.environ, NO_COLOR="1", SCHEMATHESIS_TELEMETRY="false")
    # cwd: schemathesis keeps a .schemathesis/ cache in its working directory.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=s.run_dir(),
                          timeout=max_time + 120)
    out = proc.stdout + proc.stderr
    print(out[-4000:])
    assert proc.returncode == 0, f"schemathesis ({name}) found problems (report {report}):\n{out[-6000:]}"
    assert "passed" in out


def test_schemathesis_with_a_valid_token(stack, make_user, rows, token):
    """Through nginx with a valid token of a user who has positions 1 (open) and 3 (closed),
    a guard alert and a snapshot, so the views have content to check."""
    uid = make_user()
    rows.sync(uid, 1, age=90)
    rows.sync(uid, 2, age=80, direction="sell", current_price=None)
    rows.sync(uid, 3, age=70, matched=2, divergence_reason="volume differs")
    rows.close(uid, 3, age=60)
    rows.guard(uid, age=30, level="critical")
    rows.snapshot(uid, 7900.0, 10000.0)
    tok = token(uid)
    rate = max(1, int(s.parse_rate(stack["RATE_LIMIT_PER_TOKEN"]) * 0.75))
    run_schemathesis(stack, "token", MAX_TIME,
                     ["--header", f"Authorization: Bearer {tok}", "--rate-limit", f"{rate}/s"])


def test_schemathesis_without_a_token(stack):
    run_schemathesis(stack, "no-token", max(10, MAX_TIME // 2), [])
