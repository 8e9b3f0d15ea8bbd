"""Fixtures of the package suite: the .deb installed (and purged afterwards), and the packaged
stack — the installed units started by units.py, an nginx whose main configuration is this
suite's and whose site is the package's /etc/nginx/sites-available/trading-api — configured as
an operator would, by editing the package's conffiles: DATABASE_URL and MEMCACHED_SERVERS in
/etc/default/trading-api (the test stack's servers), the port in
/etc/nginx/trading-api/listen.conf."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "Tests" / "Integration"))
import support as s  # noqa: E402
from units import ServiceUnit, SocketUnit  # noqa: E402

PACKAGE = "trading-api"
UNIT_DIR = Path("/lib/systemd/system")
DEFAULTS = Path("/etc/default/trading-api")
NGINX_CONF = Path("/etc/nginx/trading-api")
SITE = Path("/etc/nginx/sites-available/trading-api")
ACCESS_LOG = Path("/var/log/nginx/trading-api-access.log")
HTTP_PORT = int(os.environ.get("PACKAGE_HTTP_PORT", "18088"))


def run(*cmd, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)


def is_installed() -> bool:
    r = run("dpkg-query", "-W", "-f=${Status}", PACKAGE, check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


def purge():
    if run("dpkg-query", "-W", PACKAGE, check=False).returncode == 0:
        run("dpkg", "--purge", PACKAGE)


@pytest.fixture(scope="session")
def deb() -> Path:
    path = Path(os.environ.get("PACKAGE_DEB", ""))
    if not path.is_file():
        pytest.fail(f"PACKAGE_DEB={path} is not a file: build it with `make deb` (scripts/test.sh does)",
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the package suite installs with dpkg -i: run it as root", pytrace=False)
    return path


@pytest.fixture(scope="session")
def installed(deb):
    """The package freshly installed (an earlier install is purged first), purged at the end."""
    purge()
    r = run("dpkg", "-i", str(deb), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    yield deb
    purge()
    ACCESS_LOG.unlink(missing_ok=True)


def set_conffile_line(path: Path, key: str, value: str):
    """KEY=value in place of the file's KEY= line, as an operator edits /etc/default."""
    text = path.read_text()
    text, n = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
    assert n == 1, f"{path} has no {key}= line"
    path.write_text(text)


@dataclass
class PackagedStack:
    base_url: str
    run_dir: Path          # holds stack.env for the smoke run
    socket: SocketUnit
    service: ServiceUnit
    nginx: subprocess.Popen

    def healthy(self) -> bool:
        try:
            r = requests.get(self.base_url + s.HEALTH, timeout=5)
        except requests.RequestException:
            return False
        return r.status_code == 200 and r.json().get("database") == "ok"


def nginx_main_conf(directory: Path) -> Path:
    """This suite's main configuration: the package's site is all of http {}."""
    conf = directory / "nginx.conf"
    conf.write_text(f"""load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
user www-data;
worker_processes 2;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include {SITE};
}}
""")
    return conf


@pytest.fixture(scope="module")
def packaged(installed, tmp_path_factory):
    test_stack = s.parse_env_file(s.run_dir() / "stack.env")
    set_conffile_line(DEFAULTS, "DATABASE_URL", test_stack["DATABASE_URL"])
    set_conffile_line(DEFAULTS, "MEMCACHED_SERVERS", test_stack["MEMCACHED_SERVERS"])
    (NGINX_CONF / "listen.conf").write_text(f"listen 127.0.0.1:{HTTP_PORT} default_server;\nserver_name _;\n")

    socket_unit = SocketUnit(UNIT_DIR / "trading-api.socket")
    service = ServiceUnit(UNIT_DIR / "trading-api.service", socket_unit)
    service.start()

    directory = tmp_path_factory.mktemp("package-nginx")
    os.chmod(directory, 0o755)
    conf = nginx_main_conf(directory)
    r = run("nginx", "-t", "-q", "-c", str(conf), check=False)
    assert r.returncode == 0, f"nginx -t with the package's site: {r.stderr}"
    nginx = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run_dir = tmp_path_factory.mktemp("package-run")
    stack = PackagedStack(f"http://127.0.0.1:{HTTP_PORT}", run_dir, socket_unit, service, nginx)
    try:
        s.wait_until(stack.healthy, timeout=30, interval=0.25, what="the packaged stack to answer its health check")
        write_stack_env(stack, test_stack)
        yield stack
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(15)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        service.stop()
        socket_unit.close()


def write_stack_env(stack: PackagedStack, test_stack: dict):
    """stack.env as Tests/Integration's conftest reads it, describing the packaged stack: its
    URL, its JWT key (the one postinst made), its settings and rate limits."""
    keys = dict(line.split("=", 1) for line in Path("/etc/trading-api/jwt-keys").read_text().splitlines()
                if line and not line.startswith("#"))
    settings = {"CACHE_TTL_SECONDS": "300"}
    settings.update({k: v for k, v in s.parse_env_file(DEFAULTS).items()})
    ratelimit = (NGINX_CONF / "ratelimit.conf").read_text()
    server = (NGINX_CONF / "server.conf").read_text()
    env = {
        "BASE_URL": stack.base_url,
        "HTTP_PORT": str(HTTP_PORT),
        "DATABASE_URL": test_stack["DATABASE_URL"],
        "MEMCACHED_SERVERS": test_stack["MEMCACHED_SERVERS"],
        "JWT_SECRET_KEY": keys["k1"],
        "CACHE_TTL_SECONDS": settings["CACHE_TTL_SECONDS"],
        "RATE_LIMIT_PER_ADDR": re.search(r"zone=per_addr:\S+\s+rate=(\S+);", ratelimit).group(1),
        "RATE_LIMIT_PER_TOKEN": re.search(r"zone=per_token:\S+\s+rate=(\S+);", ratelimit).group(1),
        "RATE_BURST_PER_ADDR": re.search(r"zone=per_addr\s+burst=(\d+)", server).group(1),
        "RATE_BURST_PER_TOKEN": re.search(r"zone=per_token\s+burst=(\d+)", server).group(1),
        "RUN_DIR": str(stack.run_dir),
    }
    (stack.run_dir / "stack.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
