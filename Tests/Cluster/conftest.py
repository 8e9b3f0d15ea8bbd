"""The cluster of docs/SCALING.md, built by scripts/cluster.sh for this session and removed
after it: nginx on `web`, pools on the worker hosts `w1` and `w2`, Postgres on `db` and its replica on `db2`, memcached
on `mc1` and `mc2`, each host a network namespace on one bridge; the tests run in the root namespace
as the clients."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "Integration"))
sys.path.insert(0, str(ROOT / "Tests" / "Faults"))  # load.py: the fault suite's wrk driver
import support as s  # noqa: E402  (Tests/Integration/support.py: JWTs, env files, waits)

from clusterkit import CLUSTER_DIR, cluster_sh  # noqa: E402

USERS = 40


@dataclass
class Cluster:
    env: dict
    users: list[str]

    @property
    def base_url(self) -> str:
        return self.env["BASE_URL"]

    def token(self, user: str, ttl: int = 3600) -> str:
        now = int(time.time())
        return s.make_jwt({"sub": user, "iat": now, "exp": now + ttl}, self.env["JWT_SECRET_KEY"].encode())

    def addr(self, host: str) -> str:
        return self.env[f"ADDR_{host}"]

    def access_log(self) -> Path:
        return CLUSTER_DIR / "web" / "logs" / "nginx-access.log"


@pytest.fixture(scope="session")
def cluster():
    cluster_sh("down")  # what a crashed run may have left
    for figures in ("results.md", "freshness.md"):  # this run's figures only
        (CLUSTER_DIR / figures).unlink(missing_ok=True)
    try:
        cluster_sh("up")
        env = s.parse_env_file(CLUSTER_DIR / "cluster.env")
        subprocess.run([str(ROOT / "scripts" / "generate-data.sh"), str(USERS), "60"], cwd=ROOT, check=True,
                       env={**os.environ, "DATABASE_URL": env["DATABASE_URL"]}, capture_output=True, timeout=120)
        with psycopg.connect(env["DATABASE_URL"]) as db:
            users = [str(r[0]) for r in db.execute("SELECT id FROM users ORDER BY id LIMIT %s", (USERS,))]
        c = Cluster(env, users)
        s.wait_until(lambda: requests.get(c.base_url + s.HEALTH, timeout=5).status_code == 200,
                     timeout=30, interval=0.5, what="the cluster's health through nginx")
        yield c
    finally:
        cluster_sh("down")
