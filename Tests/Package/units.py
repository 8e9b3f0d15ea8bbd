"""Starts the package's systemd units the way systemd would, for a machine without systemd as
PID 1 (CI, containers): the socket unit's listening socket held here, the service's process
started with that socket on its standard input, as its user, with its environment file, its
log file and no privileges. Only the directives the package uses are understood; any other in
a [Socket] or [Service] section fails loudly, so the units cannot drift from what is tested.
The sandboxing directives systemd alone can apply are listed in SANDBOX and checked by
`systemd-analyze verify` instead.
"""
from __future__ import annotations

import grp
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

SANDBOX = {
    "AmbientCapabilities", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
    "ProtectClock", "ProtectHostname", "RestrictAddressFamilies", "RestrictNamespaces",
    "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute",
    "SystemCallArchitectures", "LimitNOFILE", "Restart", "RestartSec", "Type", "ExecReload",
}
SERVICE_KEYS = {"User", "Group", "EnvironmentFile", "ExecStart", "StandardInput", "StandardOutput",
                "StandardError", "KillMode", "TimeoutStopSec", "UMask", "NoNewPrivileges",
                "CapabilityBoundingSet"} | SANDBOX
SOCKET_KEYS = {"ListenStream", "Accept", "Backlog", "SocketUser", "SocketGroup", "SocketMode", "DirectoryMode"}


def parse_unit(path: Path) -> dict[str, dict[str, str]]:
    """{section: {key: last value}}; comments and blank lines skipped."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path}: {raw!r} outside a section"
        current[key.strip()] = value.strip()
    return sections


def parse_environment_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile=: KEY=VALUE lines, # and ; comments, optional quotes."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


class SocketUnit:
    """The listening socket of a .socket unit (ListenStream= a path, Accept=no)."""

    def __init__(self, path: Path):
        options = parse_unit(path)["Socket"]
        unknown = set(options) - SOCKET_KEYS
        assert not unknown, f"{path}: directives the test cannot apply: {sorted(unknown)}"
        assert options.get("Accept", "no") == "no"
        self.path = Path(options["ListenStream"])
        self.path.parent.mkdir(mode=int(options.get("DirectoryMode", "0755"), 8), parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.bind(str(self.path))
        os.chown(self.path, pwd.getpwnam(options.get("SocketUser", "root")).pw_uid,
                 grp.getgrnam(options.get("SocketGroup", "root")).gr_gid)
        os.chmod(self.path, int(options.get("SocketMode", "0666"), 8))
        self.socket.listen(int(options.get("Backlog", "4096")))

    def close(self):
        self.socket.close()
        self.path.unlink(missing_ok=True)


class ServiceUnit:
    """The main process of a .service unit, started and stopped like systemd does it."""

    def __init__(self, path: Path, socket_unit: SocketUnit):
        self.options = parse_unit(path)["Service"]
        unknown = set(self.options) - SERVICE_KEYS
        assert not unknown, f"{path}: directives the test cannot apply: {sorted(unknown)}"
        self.socket_unit = socket_unit
        self.process: subprocess.Popen | None = None

    def start(self):
        o = self.options
        assert o["StandardInput"] == "socket" and o["StandardError"] == "inherit"
        assert o["StandardOutput"].startswith("append:")
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(parse_environment_file(Path(o["EnvironmentFile"])))
        setpriv = ["setpriv", f"--reuid={o['User']}", f"--regid={o['Group']}", "--init-groups",
                   "--inh-caps=-all"]
        if o.get("CapabilityBoundingSet", None) == "":
            setpriv.append("--bounding-set=-all")
        if o.get("NoNewPrivileges") == "yes":
            setpriv.append("--no-new-privs")
        log = open(o["StandardOutput"].removeprefix("append:"), "ab")
        umask = int(o.get("UMask", "0022"), 8)
        self.process = subprocess.Popen(
            setpriv + o["ExecStart"].split(), env=env, stdin=self.socket_unit.socket.fileno(),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=lambda: os.umask(umask))
        log.close()

    def stop(self):
        """KillMode=mixed: SIGTERM to the main process, SIGKILL to what is left after the timeout."""
        assert self.options["KillMode"] == "mixed"
        if self.process is None:
            return
        timeout = float(self.options.get("TimeoutStopSec", "90"))
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(5)
        self.process = None
