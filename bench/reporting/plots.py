"""Render: the report's plots (matplotlib, PNG)."""
from __future__ import annotations

from reporting.tables import ENDPOINT_NAMES
from reporting.targets import CACHED_P99_MS, RSS_MB, UNCACHED_P99_MS


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def count(env, key) -> str:
    value = env.get(key, "?")
    return f"{int(value):,}" if value.isdigit() else value


def suite_title(env) -> str:
    """What the suite ran on, from the recorded environment."""
    return (f"trading-api via nginx + FastCGI pool, {count(env, 'users')} users × "
            f"{count(env, 'rows_per_user')} rows, loopback, {env.get('host_cpus', '?')} cores")


def series(measured, kind, endpoint="mixed"):
    """(connections, results) of one kind of run, by connections."""
    points = sorted(((m.run.conns, m.run.result) for m in measured
                     if m.fig and m.run.kind == kind and m.run.endpoint == endpoint),
                    key=lambda p: p[0])
    return [c for c, _ in points], [r for _, r in points]


def style_log_axes(ax, conns, title, ylabel, threads):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(conns)
    ax.set_xticklabels([str(c) for c in conns])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
    ax.set_xlabel(f"connections (wrk -t{threads})")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def plot_suite(measured, env, png) -> None:
    """Throughput and p99 against connections: ceiling, cached, uncached, single endpoints."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    lines = [("ceiling", "ceiling: nginx return 200 (1 KB)", "k", "--", "s"),
             ("mixed", f"mixed, cached (TTL {env.get('cache_ttl', '?')} s)", "tab:blue", "-", "o"),
             ("uncached", "mixed, uncached (TTL 0)", "tab:red", "-", "D")]
    for kind, name, color, ls, marker in lines:
        xs, rs = series(measured, kind)
        if xs:
            ax1.plot(xs, [r.rps for r in rs], ls, color=color, marker=marker, label=name)
            ax2.plot(xs, [r.p99_ms for r in rs], ls, color=color, marker=marker, label=name)
    for endpoint, marker in (("status", "^"), ("open", "v"), ("guards", "<")):
        xs, rs = series(measured, "single", endpoint)
        if xs:
            name = f"{ENDPOINT_NAMES[endpoint]} only, cached"
            ax1.plot(xs, [r.rps for r in rs], marker, color="tab:green", alpha=0.7, label=name)
            ax2.plot(xs, [r.p99_ms for r in rs], marker, color="tab:green", alpha=0.7, label=name)
    ax2.axhline(CACHED_P99_MS, color="tab:blue", lw=0.8, ls=":", label=f"target p99 cached ({CACHED_P99_MS:g} ms)")
    ax2.axhline(UNCACHED_P99_MS, color="tab:red", lw=0.8, ls=":",
                label=f"target p99 uncached ({UNCACHED_P99_MS:g} ms)")
    conns = sorted({m.run.conns for m in measured if m.fig})
    threads = env.get("threads", "?")
    style_log_axes(ax1, conns, "Throughput", "requests/s", threads)
    style_log_axes(ax2, conns, "p99 latency", "ms", threads)
    ax1.legend(fontsize=8, loc="best")
    ax2.legend(fontsize=7, loc="best")
    fig.suptitle(suite_title(env))
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_soak(soak, png) -> None:
    """Each worker's RSS, p50/p99 and throughput per window, over the soak's time."""
    plt = pyplot()
    windows = soak.windows
    t0 = windows[0].run.t_start
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    tracks = {}   # (pid, start) -> [(s since t0, RSS MB)]
    for w in windows[0].fig.workers_before or ():
        tracks.setdefault(w.key, []).append((0.0, w.rss_mb))
    for m in windows:
        for w in m.fig.workers or ():
            tracks.setdefault(w.key, []).append((m.run.t_end - t0, w.rss_mb))
    for (pid, _), pts in sorted(tracks.items()):
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], "-o", ms=3, label=f"worker {pid}")
    ax1.axhline(RSS_MB, color="tab:red", ls=":", lw=0.8, label=f"target {RSS_MB:g} MB")
    ax1.set_ylabel("RSS (MB)")
    ax1.set_title("Worker RSS (each line one worker process)")
    ax1.legend(fontsize=7, ncol=4)
    xs = [m.run.t_end - t0 for m in windows]
    results = [m.run.result for m in windows]
    ax2.plot(xs, [r.p99_ms for r in results], "-o", ms=3, color="tab:red", label="p99")
    ax2.plot(xs, [r.p50_ms for r in results], "-o", ms=3, color="tab:blue", label="p50")
    ax2.set_ylabel("latency (ms)")
    ax2.set_title("Latency per window")
    ax2.legend(fontsize=8)
    ax3.plot(xs, [r.rps for r in results], "-o", ms=3, color="tab:green")
    ax3.set_ylabel("requests/s")
    ax3.set_xlabel("seconds since the start of the soak")
    ax3.set_title("Throughput per window")
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
