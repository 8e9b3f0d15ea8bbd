#!/usr/bin/env bash
# Installs what building, running, testing and benchmarking need on Debian 12, only when
# something is missing (dpkg status and the venv's requirements stamp are checked first).
# Swift itself is not installed here (expected on PATH, or at /opt/swift/usr/bin).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_PYTHON=${BASE_PYTHON:-python3}   # only creates the virtual environment
VENV="$ROOT/.venv"
REQUIREMENTS=("$ROOT/Tests/Integration/requirements.txt" "$ROOT/bench/requirements.txt")

log() { printf '[deps] %s\n' "$*" >&2; }

PACKAGES=(
    # C libraries the Swift targets link (pkg-config: fcgi, libpq, libmemcached, libcurl)
    libfcgi-dev libpq-dev libmemcached-dev libcurl4-openssl-dev pkg-config
    # cgi-fcgi, the real FastCGI client of Tests/FastCGITests
    libfcgi-bin
    # the stack (nchan: the live stream's pub/sub inside nginx)
    postgresql memcached nginx libnginx-mod-nchan
    # benchmarking
    wrk apache2-utils
    # the dashboard's browser tests (Tests/Integration/test_dashboard.py: selenium drives a
    # headless chromium through chromium-driver; a font so its screenshots have text)
    chromium chromium-driver fonts-dejavu-core
    # scripts and tests
    curl ca-certificates make python3 python3-venv
    # make deb and its checks (packaging/build-deb.sh, Tests/Package): dpkg-shlibdeps and
    # dpkg-parsechangelog, strip, lintian, systemd-analyze verify, logrotate --debug
    dpkg-dev binutils lintian systemd logrotate
    # what `swift build` needs from the system (git for package dependencies, the C toolchain
    # and libraries the Swift toolchain links against)
    git gcc libc6-dev libstdc++-12-dev libxml2-dev libncurses-dev
    libsqlite3-dev libpython3-dev uuid-dev zlib1g-dev tzdata
)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { log "missing packages (${missing[*]}): run as root"; exit 1; }
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
else
    log "system packages: all present"
fi

# Python test and bench tools (pytest, requests, psycopg, schemathesis, matplotlib) live in a
# virtual environment inside the repository, $VENV (ignored by git), never in the system Python.
# scripts/test.sh, bench/run.sh and the Makefile run $VENV/bin/python. Re-installed only when a
# requirements file changed since the last install (a stamp in $VENV).
stamp="$VENV/.requirements.sha256"
want=$(cat "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "python packages: $VENV up to date"
    exit 0
fi
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    # None yet, or a broken one (made before python3-venv was installed, or interrupted).
    log "creating the virtual environment $VENV"
    "$BASE_PYTHON" -m venv --clear "$VENV"
fi
log "installing python packages into $VENV (${REQUIREMENTS[*]#"$ROOT"/})"
req_args=()
for r in "${REQUIREMENTS[@]}"; do req_args+=(-r "$r"); done
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${req_args[@]}"
printf '%s\n' "$want" >"$stamp"
log "python packages installed"
