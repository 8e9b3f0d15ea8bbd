"""The Debian package: lintian and systemd-analyze clean, installed as documented, its units
serving through its nginx site, connections queued across a restart, and the integration
tests' smoke subset passing against it (docs/OPERATIONS.md, "Install the Debian package")."""
from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from conftest import ACCESS_LOG, DEFAULTS, NGINX_CONF, REPO, SITE, UNIT_DIR, run
import support as s

UNITS = [UNIT_DIR / "trading-api.socket", UNIT_DIR / "trading-api.service"]


def test_lintian_reports_no_errors_or_warnings(deb):
    r = run("lintian", "--fail-on", "error,warning", "--no-tag-display-limit", str(deb), check=False)
    tags = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert r.returncode == 0 and not tags, r.stdout + r.stderr


def test_systemd_analyze_verify_is_clean(installed):
    r = run("systemd-analyze", "verify", *map(str, UNITS), check=False)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_installed_files_owners_and_modes(installed):
    binary = Path("/usr/sbin/trading-api")
    info = binary.stat()
    assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o755
    assert "libswiftCore" not in run("ldd", str(binary)).stdout, "the Swift runtime is linked statically"
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "trading-api").stdout
    for path in (DEFAULTS, SITE, NGINX_CONF / "listen.conf", Path("/etc/logrotate.d/trading-api")):
        assert f" {path} " in conffiles, f"{path} is not a conffile"
    keys = Path("/etc/trading-api/jwt-keys").stat()
    assert (keys.st_uid, keys.st_gid, stat.S_IMODE(keys.st_mode)) == (0, grp.getgrnam("trading-api").gr_gid, 0o640)
    assert stat.S_IMODE(DEFAULTS.stat().st_mode) == 0o600
    user = pwd.getpwnam("trading-api")
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false") and user.pw_uid < 1000
    assert sorted(p.name for p in Path("/usr/share/trading-api/migrations").glob("*.sql")) == \
        sorted(p.name for p in (REPO / "sql" / "migrations").glob("*.sql"))


def test_logrotate_accepts_the_policy(installed):
    r = run("logrotate", "--debug", "/etc/logrotate.d/trading-api", check=False)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr


def test_migrate_is_idempotent_on_the_test_database(installed):
    url = s.parse_env_file(s.run_dir() / "stack.env")["DATABASE_URL"]
    r = run("/usr/sbin/trading-api-migrate", url, check=False)
    assert r.returncode == 0 and "[migrate] applying" not in r.stderr, r.stderr


def status_of(pid: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


def test_pool_serves_the_socket_units_socket_unprivileged(packaged):
    pid = packaged.service.process.pid
    status = status_of(pid)
    uid = pwd.getpwnam("trading-api").pw_uid
    assert status["Uid"].split() == [str(uid)] * 4
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[caps], 16) == 0, caps
    assert status["NoNewPrivs"].strip() == "1"
    # Its standard input is the socket the socket unit holds, and it says so.
    held = os.fstat(packaged.socket.socket.fileno()).st_ino
    assert os.readlink(f"/proc/{pid}/fd/0") == f"socket:[{held}]"
    log = Path("/var/log/trading-api/pool.log").read_text()
    assert "serving the listening socket inherited on fd 0" in log
    sock = packaged.socket.path.stat()
    assert (pwd.getpwuid(sock.st_uid).pw_name, grp.getgrgid(sock.st_gid).gr_name, stat.S_IMODE(sock.st_mode)) == \
        ("trading-api", "www-data", 0o660)


def test_connections_queue_while_the_pool_restarts(packaged):
    """The socket unit's point: with the pool stopped, nginx's connections wait in the socket's
    backlog and are answered once it is back, none refused."""
    packaged.service.stop()
    results: list[int | str] = []

    def call():
        try:
            results.append(requests.get(packaged.base_url + s.HEALTH, timeout=30).status_code)
        except requests.RequestException as e:
            results.append(repr(e))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    assert results == [], f"answered while no pool ran: {results}"
    packaged.service.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 8, results
    s.wait_until(packaged.healthy, timeout=30, interval=0.25, what="the restarted packaged pool")


def test_integration_smoke_subset_passes_through_the_package(packaged):
    results = Path(os.environ.get("TEST_RESULTS", packaged.run_dir))
    env = dict(os.environ, RUN_DIR=str(packaged.run_dir))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "smoke", f"--junitxml={results / 'package-smoke.xml'}",
         str(REPO / "Tests" / "Integration")],
        env=env, capture_output=True, text=True, cwd=REPO)
    print(r.stdout[-4000:])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and " skipped" not in r.stdout
    assert ACCESS_LOG.stat().st_size > 0, "the package's site logs to its access log"
