"""A memcached cluster (docs/SCALING.md): the pools hash keys over both memcached hosts
(libmemcached's ketama, MEMCACHED_SERVERS); losing one costs no request — its share of the views
is answered from Postgres (X-Cache BYPASS/MISS) while the other keeps serving hits — and it is
used again once it is back (libmemcached retries a failed server after 1 s)."""
from __future__ import annotations


import requests

import support as s
from clusterkit import cluster_sh, memcached_command, run_fault


def mc_stats(address: str) -> dict[str, int]:
    """memcached's `stats` of ADDRESS (host:port), the numeric ones."""
    stats = {}
    for line in memcached_command(address, "stats").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            stats[parts[1]] = int(parts[2])
    return stats


def servers(cluster) -> list[str]:
    return cluster.env["MEMCACHED_SERVERS"].split(",")


def warm(cluster) -> None:
    session = requests.Session()
    for user in cluster.users:
        for path in (s.STATUS, s.OPEN, s.GUARDS):
            session.get(cluster.base_url + path, headers=s.bearer(cluster.token(user)), timeout=15)


def test_keys_are_spread_over_both_memcached_hosts(cluster):
    warm(cluster)
    items = {a: mc_stats(a)["curr_items"] for a in servers(cluster)}
    assert len(items) == 2 and all(n > 10 for n in items.values()), items


def test_a_memcached_host_cut_costs_no_request_and_is_used_again(cluster):
    mc1 = servers(cluster)[0]
    outcome = run_fault(cluster, "mc1 link cut", lambda: cluster_sh("cut", "mc1"), lambda: cluster_sh("restore", "mc1"))
    result = outcome.load
    assert result.failed == 0, result.describe()
    assert result.ok > 1000, result.describe()
    # Its share went to Postgres, the other host's share stayed hits.
    assert result.cache.get("HIT", 0) > 0 and result.cache.get("BYPASS", 0) + result.cache.get("MISS", 0) > 0, result.cache
    assert outcome.slow == 0, "memcached's loss made answers slow"
    # Back: mc1 serves its share again (nothing was committed meanwhile: its entries still hold).
    before = mc_stats(mc1)

    def used_again():
        warm(cluster)
        return mc_stats(mc1)["get_hits"] > before["get_hits"] + 10
    s.wait_until(used_again, timeout=30, interval=1, what="mc1 serving hits again")
