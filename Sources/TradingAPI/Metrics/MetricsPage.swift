import Prometheus
import WorkerPool

/// `GET /metrics`: the whole pool's measurements in the Prometheus text format (version 0.0.4),
/// read from the scoreboard by whichever worker takes the scrape, so every scrape sees every
/// worker, those already gone included (their counters live on in the retired totals).
///
/// Counters and gauges are rendered by swift-prometheus's `PrometheusCollectorRegistry`. Its
/// histograms take single observations only and cannot be loaded with bucket counts added up in
/// shared memory, so the histogram families are written here, in the same format
/// (`HistogramText`). Names follow Prometheus's conventions: `trading_api_` prefix, base units
/// (`_seconds`, `_bytes`), `_total` on counters.
struct MetricsPage {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    let reading: PoolReading

    func render() -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        let totals = reading.totals
        let routes = MetricsLayout.routes

        for (route, name) in routes.enumerated() {
            for (column, code) in (MetricsLayout.statuses.map(String.init) + ["other"]).enumerated() {
                let value = totals[MetricsLayout.requests + route * MetricsLayout.statusColumns + column]
                guard value > 0 else { continue }
                counter(registry, "requests_total", "Requests answered by the pool, by route and HTTP status.",
                        [("route", name), ("code", code)], value)
            }
        }
        for outcome in MetricsLayout.CacheOutcome.allCases {
            counter(registry, "cache_lookups_total",
                    "View lookups in memcached: hit, miss (absent), stale (made stale by a commit or the clock), bypass (cache off, down or paused).",
                    [("outcome", outcome.label)], totals[MetricsLayout.cacheOutcomes + outcome.rawValue])
        }
        for (column, reason) in MetricsLayout.rejectionReasons.enumerated() {
            counter(registry, "token_rejections_total", "Requests refused with 401, by what was wrong with the token.",
                    [("reason", reason)], totals[MetricsLayout.authRejections + column])
        }
        for error in MetricsLayout.QueryError.allCases {
            counter(registry, "postgres_errors_total", "Failed Postgres work: unavailable (503) or failed (500).",
                    [("kind", error.label)], totals[MetricsLayout.queryErrors + error.rawValue])
        }
        counter(registry, "slow_requests_total", "Requests slower than SLOW_REQUEST_MS (each one is in the slow log).",
                [], totals[MetricsLayout.slowRequests])

        let supervisor = reading.supervisor
        for scope in MetricsLayout.Invalidation.allCases {
            counter(registry, "invalidations_total",
                    "Cache invalidations by the change listener: one user's views, or everyone's.",
                    [("scope", scope.label)], supervisor[MetricsLayout.invalidations + scope.rawValue])
        }
        counter(registry, "change_listener_reconnects_total",
                "Times the change listener connected again after losing Postgres (the cache is paused meanwhile).",
                [], supervisor[MetricsLayout.listenerReconnects])

        counter(registry, "worker_starts_total", "Worker processes started.", [], reading.pool[.workerStarts, default: 0])
        for (cause, field) in [("clean", Scoreboard.PoolCounter.exitsClean), ("error", .exitsError),
                               ("signal", .exitsSignal), ("status_lost", .exitsStatusLost)] {
            counter(registry, "worker_exits_total",
                    "Worker processes that ended: clean (recycled or stopped), error (non-zero status), signal (crash or kill), status_lost.",
                    [("cause", cause)], reading.pool[field, default: 0])
        }
        counter(registry, "pool_reloads_total", "Reloads requested (SIGHUP).", [], reading.pool[.reloads, default: 0])

        gauge(registry, "pool_start_time_seconds", "When the pool's supervisor started, in seconds since the epoch.",
              [], Double(reading.startedAt))
        gauge(registry, "workers", "Worker processes alive.", [], Double(reading.workers.count))
        let busy = reading.workers.reduce(0) { $0 + $1.requests.count }
        gauge(registry, "request_loops", "Request loops of the live workers, by state.", [("state", "busy")], Double(busy))
        gauge(registry, "request_loops", "Request loops of the live workers, by state.", [("state", "idle")],
              Double(reading.workers.count * reading.loopsPerWorker - busy))
        if let queue = reading.listenQueue {
            gauge(registry, "fastcgi_listen_queue", "Connections waiting in the FastCGI socket's accept queue.", [], Double(queue.depth))
            gauge(registry, "fastcgi_listen_queue_limit", "The accept queue's length (listen backlog).", [], Double(queue.limit))
        }

        var bytes = registry.emitToBuffer()
        for (route, name) in routes.enumerated() {
            let base = MetricsLayout.requestDurations + route * DurationBuckets.words
            HistogramText(name: "trading_api_request_duration_seconds",
                          help: "Time from a worker taking the request to its answer, by route.",
                          labels: [("route", name)], words: totals, base: base, skipEmpty: true).append(to: &bytes, header: route == 0)
        }
        HistogramText(name: "trading_api_postgres_query_duration_seconds",
                      help: "Time a view's rendering spent in Postgres statements (connecting included).",
                      labels: [], words: totals, base: MetricsLayout.queryDurations).append(to: &bytes)
        HistogramText(name: "trading_api_fastcgi_queue_wait_seconds",
                      help: "Time from nginx starting the request to a worker taking it (nginx's millisecond clock).",
                      labels: [], words: totals, base: MetricsLayout.queueWaits).append(to: &bytes)
        HistogramText(name: "trading_api_invalidation_delay_seconds",
                      help: "Time from the writing statement to the users' cache generations replaced.",
                      labels: [], words: supervisor, base: MetricsLayout.invalidationDelays).append(to: &bytes)
        return bytes
    }

    private func counter(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String,
                         _ labels: [(String, String)], _ value: UInt64) {
        let descriptor = MetricNameDescriptor(namespace: "trading_api", metricName: name, unitName: "", helpText: help)
        registry.makeCounter(descriptor: descriptor, labels: labels).increment(by: Int64(clamping: value))
    }

    private func gauge(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String,
                       _ labels: [(String, String)], _ value: Double) {
        let descriptor = MetricNameDescriptor(namespace: "trading_api", metricName: name, unitName: "", helpText: help)
        registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
    }
}

/// One histogram series in the Prometheus text format, from `DurationBuckets` words.
struct HistogramText {
    let name: String
    let help: String
    let labels: [(String, String)]
    let words: [UInt64]
    let base: Int
    var skipEmpty = false

    func append(to bytes: inout [UInt8], header: Bool = true) {
        if header {
            bytes += Array("# HELP \(name) \(help)\n# TYPE \(name) histogram\n".utf8)
        }
        let bounds = DurationBuckets.bounds
        let count = (0...bounds.count).reduce(UInt64(0)) { $0 + words[base + $1] }
        if skipEmpty && count == 0 { return }
        let labelText = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }
        var cumulative: UInt64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += words[base + index]
            bytes += Array("\(name)_bucket{\((labelText + ["le=\"\(Self.seconds(bound))\""]).joined(separator: ","))} \(cumulative)\n".utf8)
        }
        bytes += Array("\(name)_bucket{\((labelText + ["le=\"+Inf\""]).joined(separator: ","))} \(count)\n".utf8)
        let suffix = labelText.isEmpty ? "" : "{\(labelText.joined(separator: ","))}"
        bytes += Array("\(name)_sum\(suffix) \(Self.seconds(words[base + bounds.count + 1]))\n".utf8)
        bytes += Array("\(name)_count\(suffix) \(count)\n".utf8)
    }

    /// Microseconds as decimal seconds without exponent: 2500 → "0.0025".
    static func seconds(_ microseconds: UInt64) -> String {
        let fraction = String(microseconds % 1_000_000)
        var digits = String(repeating: "0", count: 6 - fraction.count) + fraction
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(microseconds / 1_000_000)" + (digits.isEmpty ? "" : "." + digits)
    }

    /// The text format's label-value escapes: backslash, double quote, newline.
    static func escaped(_ value: String) -> String {
        value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }
}
