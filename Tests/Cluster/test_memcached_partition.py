"""A memcached host back from a partition (docs/SCALING.md, "A memcached host cut off"): a commit
made while the host holding the user's generation was unreachable is never hidden by the entry
that host still holds when it comes back. The host keeps its data (a cut cable, not a restart),
so its old generation and old entries return with it; the epoch copy it holds disagrees with the
other host's until the change listener has caught it up, and a lookup trusts the cache only while
every copy it reads agrees (docs/design/cache-freshness.md)."""
from __future__ import annotations

import time
import urllib.parse

import requests

import support as s
from clusterkit import cluster_sh, commit_sync, memcached_command, record_freshness
from test_memcached_hosts import servers

PROBE_SECONDS = 4.0
PROBE_EVERY_S = 0.005


def keys_on(address: str) -> list[str]:
    """Every key memcached at ADDRESS (host:port) holds (`lru_crawler metadump all`)."""
    return [urllib.parse.unquote(field[4:]) for line in memcached_command(address, "lru_crawler metadump all").splitlines()
            for field in line.split()[:1] if field.startswith("key=")]


def host_of_generation(cluster, user: str) -> str | None:
    """The memcached host (host:port) that holds USER's generation key (None: none yet)."""
    holders = [a for a in servers(cluster) if any(k.endswith(f":gen:{user}") for k in keys_on(a))]
    assert len(holders) <= 1, f"{user}'s generation on {holders}"
    return holders[0] if holders else None


def test_a_commit_during_a_memcached_partition_is_not_hidden_when_the_host_returns(cluster):
    session = requests.Session()
    hosts = servers(cluster)
    epoch_hosts = [a for a in hosts if any(":epoch" in k for k in keys_on(a))]

    def status(user):
        resp = session.get(cluster.base_url + s.STATUS, headers=s.bearer(cluster.token(user)), timeout=15)
        return resp.headers.get("X-Cache"), s.ok(resp)["total_syncs"]

    # A user whose generation sits on a host that also holds an epoch (both hosts, with copies).
    for user in cluster.users:
        # A lookup creates the generation (unless the cache is briefly bypassed after the last test).
        holder = s.wait_until(lambda: status(user) and host_of_generation(cluster, user), timeout=10, interval=0.1,
                              what=f"{user}'s generation in memcached")
        if holder in epoch_hosts:
            break
    else:
        raise AssertionError(f"no user's generation on an epoch host {epoch_hosts}")
    name = "mc1" if holder == hosts[0] else "mc2"
    s.wait_until(lambda: status(user)[0] == "HIT", timeout=10, interval=0.1, what=f"{user}'s status cached")
    before = status(user)[1]

    cluster_sh("cut", name)
    try:
        commit_sync(cluster, user, 990_001)
        # Answered from Postgres while the host is away: fresh.
        s.wait_until(lambda: status(user)[1] == before + 1, timeout=10, interval=0.05,
                     what="the commit answered while the host is cut off")
        time.sleep(1.5)  # the listener has tried (and failed) to replace the generation by now
    finally:
        cluster_sh("restore", name)
    restored = time.monotonic()
    answers = []
    while time.monotonic() - restored < PROBE_SECONDS:
        answers.append((time.monotonic() - restored, *status(user)))
        time.sleep(PROBE_EVERY_S)
    stale = [a for a in answers if a[2] != before + 1]
    hits = [a for a in answers if a[1] == "HIT"]
    # Served from the cache again once the listener has caught the host up.
    s.wait_until(lambda: status(user)[0] == "HIT", timeout=15, interval=0.1, what="hits again after the partition")
    record_freshness(f"{name} partitioned, commit meanwhile", len(answers), len(stale),
                     hits[0][0] if hits else None)
    assert not stale, f"{len(stale)} stale answers of {len(answers)} after the host returned, first at {stale[0][0]:.3f} s"
