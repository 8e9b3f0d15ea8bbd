"""A memcached cluster (docs/SCALING.md): the pools hash keys over both memcached hosts
(libmemcached's ketama, MEMCACHED_SERVERS); losing one costs no request — its share of the views
is answered from Postgres (X-Cache BYPASS/MISS) while the other keeps serving hits — and it is
used again once it is back (libmemcached retries a failed server after 1 s); the stampede lock
holds across them."""
from __future__ import annotations

import json

import requests

import support as s
from clusterkit import cluster_sh, commit_sync, memcached_command, run_fault


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


def test_the_stampede_lock_holds_across_memcached_hosts(cluster):
    """A hot view invalidated by a commit, then 200 requests for it at once through both worker
    hosts: the view's lock (a key on one memcached host, the same for every worker) lets one
    request recompute it while the rest wait for its entry; every answer shows the commit."""
    user = cluster.users[12]
    key = s.generation_key(user)

    def generation():
        return [s.memcached_get(server, key) for server in servers(cluster)]

    recomputes = []
    for round_ in range(3):
        resp = requests.get(cluster.base_url + s.STATUS, headers=s.bearer(cluster.token(user)), timeout=15)
        total = s.ok(resp)["total_syncs"]
        before = generation()
        commit_sync(cluster, user, 887_000 + round_)
        s.wait_until(lambda: generation() != before, timeout=5, interval=0.005, what="the generation replaced")
        results = s.burst(cluster.base_url, s.STATUS, [cluster.token(user) for _ in range(200)])
        assert all(status == 200 for status, _, _ in results), [r[:2] for r in results if r[0] != 200][:5]
        assert all(json.loads(body)["total_syncs"] == total + 1 for _, _, body in results)
        recomputes.append(sum(1 for _, cache, _ in results if cache == "MISS"))
    print(f"recomputes per invalidation under 200 concurrent requests over two worker hosts: {recomputes}")
    assert max(recomputes) <= 2, recomputes
