#!/usr/bin/env bash
# `make test`: dependencies, release build, a throw-away test stack running it, swift test (debug),
# integration tests, the fault suite, the cluster tests (hosts in network namespaces, made and
# removed by Tests/Cluster), the Debian package (built, installed with dpkg -i on this machine,
# run through its units, then purged) and the fuzzer. The stacks run the release binary that
# ships: the fault suite's figures (SIGHUP drain, throughput under faults) are the product's, not
# a debug build's.
#
# The test stack (RUN_DIR=.test-run, HTTP 18080, Postgres 54339, memcached 11229) runs beside a
# `make run` stack (.run, 8080/54329/11219) without touching it, and is brought down on exit.
# Its data (.test-run/pgdata) is kept between runs; `make clean` removes it.
#
#   SKIP_DEPS=1   do not run scripts/install-deps.sh
#   SKIP_SWIFT=1  no swift build / swift test (stack + integration tests only; needs
#                 TRADING_API_BIN pointing at an existing binary)
#   KEEP_STACK=1  leave the test stack running afterwards (scripts/stack.sh down to stop it)
#   PYTEST_ARGS   extra arguments for pytest (e.g. "-k health -x")
#   TEST_SUITES   which suites run (default "swift integration faults cluster package fuzz"; make
#                 test-faults: "faults", make test-cluster: "cluster"); the build and the test stack
#                 are always there
#   FUZZ_SECONDS  how long fuzz/run.sh fuzzes (default 60)
#   CI=true       a skipped test fails the run (as .ci/run sets it)
# Ends with one line counting passed, failed and skipped tests over all suites; the JUnit XML
# files it counts are in .test-run/results.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-$ROOT/.venv/bin/python}   # scripts/install-deps.sh makes it
command -v swift >/dev/null 2>&1 || PATH="/opt/swift/usr/bin:$PATH"

phase() { printf '\n==> [test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# The test stack's settings. The environment may have a make-run stack's values (a sourced
# stack.env): the test stack never uses that stack's servers.
unset DATABASE_URL MEMCACHED_SERVERS JWT_SECRET_KEY JWT_KEYS JWT_AUDIENCE JWT_ISSUER BASE_URL
export RUN_DIR="$ROOT/.test-run"
export HTTP_PORT=18080 PG_PORT=54339 MC_PORT=11229
# Named keys the key-rotation test writes and reloads (test_key_rotation.py); empty at start. In
# /run: the pool's user must reach it, and the checkout may sit in a 0700 directory.
export JWT_KEYS_FILE="/run/trading-api-test-$HTTP_PORT.jwt-keys"
export DEMO_DATA=0 CACHE_TTL_SECONDS=60 WORKERS=4 LOG_LEVEL=${TEST_LOG_LEVEL:-info}
export RATE_LIMIT_PER_ADDR=5000 RATE_BURST_PER_ADDR=10000
export RATE_LIMIT_PER_TOKEN=20 RATE_BURST_PER_TOKEN=40
# Origins whose pages may call the API (test_web.py: CORS; no such host exists).
export CORS_ORIGINS="https://dashboard.example.test http://127.0.0.1:18081"
export TRADING_API_BIN=${TEST_TRADING_API_BIN:-$ROOT/.build/release/trading-api}
TEST_SUITES=${TEST_SUITES:-swift integration faults cluster package fuzz}
suite() { [[ " $TEST_SUITES " == *" $1 "* ]]; }

if [ "${SKIP_DEPS:-0}" != 1 ]; then
    phase "dependencies (scripts/install-deps.sh)"
    scripts/install-deps.sh
fi

if [ "${SKIP_SWIFT:-0}" != 1 ]; then
    phase "swift build -c release (the test stack's binary)"
    swift build -c release
fi

SUMMARY=""   # the last line of the run: scripts/test-summary.py's count and the verdict

stack_down() {
    local rc=$?
    if [ "${KEEP_STACK:-0}" = 1 ]; then
        phase "test stack left running (RUN_DIR=$RUN_DIR scripts/stack.sh down)"
    else
        phase "test stack down"
        scripts/stack.sh down || true
        rm -f "$JWT_KEYS_FILE"
    fi
    [ -z "$SUMMARY" ] || printf '\n%s\n' "$SUMMARY"
    exit "$rc"
}
trap stack_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "test stack up ($RUN_DIR, http://127.0.0.1:$HTTP_PORT)"
install -m 0600 /dev/null "$JWT_KEYS_FILE"
scripts/stack.sh up

# Everything the tests need to reach the stack: BASE_URL, DATABASE_URL, MEMCACHED_SERVERS,
# JWT_SECRET_KEY, RUN_DIR, ports, rate limits, WORKERS, CACHE_TTL_SECONDS.
set -a
# shellcheck disable=SC1091
. "$RUN_DIR/stack.env"
set +a

# JUnit XML of every suite, counted into one line at the end (scripts/test-summary.py).
RESULTS="$RUN_DIR/results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
failed=()
outcomes=()

if [ "${SKIP_SWIFT:-0}" != 1 ] && suite swift; then
    phase "swift test"
    # Swift Testing's report is swift-swift-testing.xml; XCTest's results are read from the log.
    swift test --xunit-output "$RESULTS/swift.xml" 2>&1 | tee "$RESULTS/swift.xctest.log" \
        || failed+=("swift test")
fi

read -r -a pytest_extra <<<"${PYTEST_ARGS:-}"
if suite integration; then
    phase "integration tests (pytest Tests/Integration)"
    "$PYTHON" -m pytest -q -rs --junitxml="$RESULTS/integration.xml" Tests/Integration \
        "${pytest_extra[@]}" || failed+=("pytest")
fi

if suite faults; then
    # Last on the stack: the SIGTERM case stops the pool and starts it again.
    phase "fault suite under wrk load (pytest Tests/Faults)"
    "$PYTHON" -m pytest -q -rs --junitxml="$RESULTS/faults.xml" Tests/Faults || failed+=("faults")
fi

if suite cluster; then
    # Hosts in network namespaces (scripts/cluster.sh): worker hosts behind one nginx, cut
    # under load. Before `make deb`, which relinks the release binary the pools run.
    phase "cluster tests (pytest Tests/Cluster: hosts in network namespaces)"
    CLUSTER_DIR="$RUN_DIR/cluster" "$PYTHON" -m pytest -q -rs --junitxml="$RESULTS/cluster.xml" Tests/Cluster \
        || failed+=("cluster")
fi

if suite package && [ "${SKIP_SWIFT:-0}" != 1 ]; then
    # After the fault suite: make deb relinks .build/release/trading-api (static stdlib); the
    # test stack's pool runs from its own copy. Purges any trading-api installed before.
    phase "Debian package (make deb; pytest Tests/Package: dpkg -i, lintian, units, smoke subset)"
    if deb=$(packaging/build-deb.sh | tail -n1); then
        PACKAGE_DEB=$deb TEST_RESULTS=$RESULTS "$PYTHON" -m pytest -q -rs --junitxml="$RESULTS/package.xml" \
            Tests/Package || failed+=("package")
    else
        failed+=("make deb")
    fi
fi

if suite fuzz && [ "${SKIP_SWIFT:-0}" != 1 ]; then
    phase "fuzzing the request parsing (fuzz/run.sh, ${FUZZ_SECONDS:-60}s)"
    if FUZZ_SECONDS=${FUZZ_SECONDS:-60} fuzz/run.sh; then
        outcomes+=(--outcome fuzz=passed)
    else
        outcomes+=(--outcome fuzz=failed)
        failed+=("fuzz")
    fi
fi

# Under CI=true a skipped test fails the run (scripts/test-summary.py).
counts=$("$PYTHON" scripts/test-summary.py "$RESULTS" "${outcomes[@]}") || failed+=("summary")
if [ ${#failed[@]} -gt 0 ]; then
    SUMMARY="$counts: FAILED (${failed[*]})"
    exit 1
fi
SUMMARY="$counts: all passed"
