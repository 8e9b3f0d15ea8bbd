"""Least privilege (docs/SECURITY.md, "Processes and privileges"): the pool runs as its own
unprivileged user with no capabilities; only nginx's group may use its socket, only the pool's
group memcached's."""
from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import support as s

POOL_USER = "trading-api"


def status_fields(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_supervisor_and_workers_run_as_the_pool_user_without_capabilities():
    user = pwd.getpwnam(POOL_USER)
    assert user.pw_uid != 0 and user.pw_shell.endswith("nologin")
    pids = s.stack_pids()
    assert pids["pool"] and pids["worker"]
    for pid in pids["pool"] + pids["worker"]:
        fields = status_fields(pid)
        assert fields["Uid"].split() == [str(user.pw_uid)] * 4, (pid, fields["Uid"])
        assert fields["Gid"].split() == [str(user.pw_gid)] * 4, (pid, fields["Gid"])
        assert fields["Groups"].split() == [str(user.pw_gid)] or fields["Groups"] == "", fields["Groups"]
        for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(fields[caps], 16) == 0, (pid, caps, fields[caps])
        assert fields["NoNewPrivs"] == "1"


def test_only_nginx_may_connect_to_the_pool_and_only_the_pool_to_memcached(stack):
    sock = Path(f"/run/trading-api-fcgi-{stack['HTTP_PORT']}/fcgi.sock")
    info = sock.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert pwd.getpwuid(info.st_uid).pw_name == POOL_USER
    assert grp.getgrgid(info.st_gid).gr_name == "www-data"
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert stat.S_IMODE(sock.parent.stat().st_mode) & 0o007 == 0

    mc = stack["MEMCACHED_SERVERS"]
    if mc.startswith("/"):
        info = os.stat(mc)
        assert grp.getgrgid(info.st_gid).gr_name == POOL_USER
        assert stat.S_IMODE(info.st_mode) & 0o007 == 0
        assert stat.S_IMODE(Path(mc).parent.stat().st_mode) & 0o007 == 0


def test_the_pool_binary_is_not_writable_by_the_pool(stack):
    exe = Path(os.readlink(f"/proc/{s.stack_pids()['pool'][0]}/exe"))
    info = exe.stat()
    assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) & 0o022 == 0
