#!/usr/bin/env bash
# Installs what building, running and testing need on Debian 12, only when something is
# missing (dpkg status / Python imports are checked first; nothing is done when all is there).
# Swift itself is not installed here (expected on PATH, or at /opt/swift/usr/bin).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
REQUIREMENTS="$ROOT/Tests/Integration/requirements.txt"

log() { printf '[deps] %s\n' "$*" >&2; }

PACKAGES=(
    # C libraries the Swift targets link (pkg-config: fcgi, libpq, libmemcached)
    libfcgi-dev libpq-dev libmemcached-dev pkg-config
    # the stack
    postgresql memcached nginx
    # benchmarking
    wrk apache2-utils
    # scripts and tests
    curl ca-certificates make python3 python3-pip
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

# Python packages of the integration tests. Checked by importing them; installed with pip
# (Debian's python is "externally managed": pip needs --break-system-packages there).
if [ ! -f "$REQUIREMENTS" ]; then
    log "no $REQUIREMENTS yet: skipping Python packages"
    exit 0
fi

modules=()
while IFS= read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    name=${line%%[\[<>=!~;]*}
    name=${name,,}
    name=${name//-/_}
    case "$name" in
        psycopg_binary) name=psycopg ;;
        psycopg2_binary) name=psycopg2 ;;
        pyyaml) name=yaml ;;
    esac
    modules+=("$name")
done <"$REQUIREMENTS"

python_has_all() {
    local m
    for m in "${modules[@]}"; do
        "$PYTHON" -c "import $m" >/dev/null 2>&1 || return 1
    done
}

if [ ${#modules[@]} -eq 0 ] || python_has_all; then
    log "python packages: all present (${modules[*]})"
    exit 0
fi

log "installing python packages from $REQUIREMENTS"
pip_args=(-m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS")
if "$PYTHON" - <<'EOF'
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)
EOF
then
    pip_args+=(--break-system-packages)
fi
PIP_ROOT_USER_ACTION=ignore "$PYTHON" "${pip_args[@]}"
python_has_all || { log "python packages still missing after pip install"; exit 1; }
log "python packages installed"
