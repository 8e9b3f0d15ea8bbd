import WorkerPool

/// One request loop's instruments: its own counters in its worker's scoreboard entry, its live
/// activity, and the pool's scoreboard for the operations pages. Without a scoreboard (tests, a
/// worker started by hand) nothing is recorded and the operations pages answer 503.
public struct RequestInstruments: Sendable {
    let scoreboard: Scoreboard?
    let counters: ScoreboardWords?
    let activity: LoopActivity?
    /// The FastCGI socket's accept queue: connections waiting, and the limit (`backlog`).
    let listenQueue: @Sendable () -> (depth: Int, limit: Int)?
    /// A request slower than this is logged with its phase timings; 0 turns the slow log off.
    let slowRequestMicroseconds: Int64

    /// `entry` is the worker's scoreboard entry, `loop` the request loop's index in the worker.
    public init(scoreboard: Scoreboard?, entry: Int?, loop: Int, slowRequestMilliseconds: Int,
                listenQueue: @escaping @Sendable () -> (depth: Int, limit: Int)?) {
        self.scoreboard = scoreboard
        let entry = entry.flatMap { entry in scoreboard.map { $0.entry(entry) } }
        counters = entry.flatMap { entry in
            (loop + 1) * MetricsLayout.counterWords <= entry.counters.count
                ? entry.counters.slice(loop * MetricsLayout.counterWords, count: MetricsLayout.counterWords) : nil
        }
        activity = entry.flatMap { entry in
            (loop + 1) * LoopActivity.words <= entry.live.count ? LoopActivity(live: entry.live, loop: loop) : nil
        }
        self.listenQueue = listenQueue
        slowRequestMicroseconds = Int64(slowRequestMilliseconds) * 1000
    }

    /// Records nothing: for tests and tools.
    public static let none = RequestInstruments(scoreboard: nil, entry: nil, loop: 0, slowRequestMilliseconds: 0,
                                                listenQueue: { nil })

    /// A finished request: its route's counter and duration, and how long it waited for a worker.
    func requestFinished(route: Int, status: Int, microseconds: UInt64, queueWaitMicroseconds: UInt64?, slow: Bool) {
        guard let counters else { return }
        counters.increment(MetricsLayout.requestWord(route: route, status: status))
        DurationBuckets.record(microseconds, into: counters,
                               at: MetricsLayout.requestDurations + route * DurationBuckets.words)
        if let queueWaitMicroseconds {
            DurationBuckets.record(queueWaitMicroseconds, into: counters, at: MetricsLayout.queueWaits)
        }
        if slow { counters.increment(MetricsLayout.slowRequests) }
    }

    func cacheLookup(_ outcome: MetricsLayout.CacheOutcome) {
        counters?.increment(MetricsLayout.cacheOutcomes + outcome.rawValue)
    }

    func tokenRejected(_ error: AuthenticationError) {
        counters?.increment(MetricsLayout.authRejections + MetricsLayout.rejectionColumn(error))
    }

    func queried(microseconds: UInt64) {
        guard let counters else { return }
        DurationBuckets.record(microseconds, into: counters, at: MetricsLayout.queryDurations)
    }

    func queryFailed(_ error: MetricsLayout.QueryError) {
        counters?.increment(MetricsLayout.queryErrors + error.rawValue)
    }
}
