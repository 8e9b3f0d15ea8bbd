"""Purging the package takes what it made, and leaves the system user (Debian's rule)."""
from __future__ import annotations

import pwd
from pathlib import Path

from conftest import is_installed, purge, run


def test_purge_removes_the_package_its_keys_logs_and_units(installed):
    purge()
    assert not is_installed()
    for path in ("/etc/trading-api", "/var/log/trading-api", "/usr/sbin/trading-api",
                 "/lib/systemd/system/trading-api.service", "/etc/default/trading-api",
                 "/etc/nginx/sites-available/trading-api", "/etc/nginx/trading-api",
                 "/etc/systemd/system/sockets.target.wants/trading-api.socket"):
        assert not Path(path).exists(), f"{path} left after purge"
    assert pwd.getpwnam("trading-api")
    assert run("dpkg-query", "-W", "trading-api", check=False).returncode != 0
