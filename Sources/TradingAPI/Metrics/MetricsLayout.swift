import WorkerPool

/// Where each of the service's measurements lives in the pool's scoreboard (`Scoreboard`), in
/// 64-bit words. Each request loop adds to its own `counterWords` words of its worker's entry
/// (one writer per word: plain stores, no cache line bounced between loops); the supervisor's
/// change listener to the supervisor words; `/metrics` and `/status` read and add them all
/// (`PoolReading`, `MetricsPage`, `PoolStatusPage`).
///
/// Counters only ever grow; a duration histogram is `DurationBuckets.count` plain (not
/// cumulative) bucket counts, an overflow count and the sum in microseconds.
enum MetricsLayout {
    /// The `route` label: the path template of each route the router knows, then the two
    /// operations pages and everything the router refused as unknown.
    static let routes: [String] = ["/api/v1/" + Router.healthPath]
        + Endpoints.all.map { "/api/v1/" + $0.path }
        + WriteEndpoints.all.map { "/api/v1/" + $0.path }
        + [OperationsPage.metrics.path, OperationsPage.status.path, "/api/v1/" + Router.streamPath,
           "/api/v1/" + Router.sessionPath, "unmatched"]
    static let unmatchedRoute = routes.count - 1

    /// The `code` label: the statuses the service answers; any other is counted as `other`.
    static let statuses = [200, 201, 304, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503, 504]
    static let statusColumns = statuses.count + 1

    static func statusColumn(_ status: Int) -> Int {
        statuses.firstIndex(of: status) ?? statuses.count
    }

    /// Why a token was refused: the `reason` label, in `AuthenticationError`'s order.
    static let rejectionReasons = ["missing", "not_bearer", "malformed", "algorithm", "signature", "claims",
                                   "expired", "not_yet_valid", "unknown_key"]

    static func rejectionColumn(_ error: AuthenticationError) -> Int {
        switch error {
        case .missingHeader: 0
        case .notBearer: 1
        case .malformedToken: 2
        case .unsupportedAlgorithm: 3
        case .badSignature: 4
        case .invalidClaims: 5
        case .expired: 6
        case .notYetValid: 7
        case .unknownKey: 8
        }
    }

    /// What a view lookup found: the `outcome` label.
    enum CacheOutcome: Int, CaseIterable {
        case hit = 0, miss, stale, bypass
        var label: String { ["hit", "miss", "stale", "bypass"][rawValue] }
    }

    enum QueryError: Int, CaseIterable {
        case unavailable = 0, failed
        var label: String { ["unavailable", "failed"][rawValue] }
    }

    // MARK: counter words of an entry

    static let requests = 0
    static let requestDurations = requests + routes.count * statusColumns
    static let cacheOutcomes = requestDurations + routes.count * DurationBuckets.words
    static let authRejections = cacheOutcomes + CacheOutcome.allCases.count
    static let queryDurations = authRejections + rejectionReasons.count
    static let queryErrors = queryDurations + DurationBuckets.words
    static let queueWaits = queryErrors + QueryError.allCases.count
    static let slowRequests = queueWaits + DurationBuckets.words
    static let counterWords = slowRequests + 1

    static func requestWord(route: Int, status: Int) -> Int {
        requests + route * statusColumns + statusColumn(status)
    }

    // MARK: supervisor words (the change listener)

    enum Invalidation: Int, CaseIterable {
        /// A user's generation replaced after their commit.
        case user = 0
        /// Every user's views retired: a TRUNCATE, the instruments, or a reconnect's new epoch.
        case everyone
        var label: String { ["user", "everyone"][rawValue] }
    }

    static let invalidations = 0
    static let invalidationDelays = invalidations + Invalidation.allCases.count
    static let listenerReconnects = invalidationDelays + DurationBuckets.words
    static let supervisorWords = listenerReconnects + 1

    // MARK: live words of an entry: what each request loop is doing

    static func liveWords(loops: Int) -> Int { loops * LoopActivity.words }

    /// The scoreboard's shape for a pool of `workers` workers with `loops` request loops each.
    static func scoreboardLayout(workers: Int, loops: Int) -> ScoreboardLayout {
        ScoreboardLayout(entries: 2 * workers, counterWords: loops * counterWords, liveWords: liveWords(loops: loops),
                         supervisorWords: supervisorWords)
    }
}

/// The service's measurements as the pool sets them up.
public enum ServiceMetrics {
    /// The scoreboard for a pool of `workers` workers with `loops` request loops each.
    public static func scoreboardLayout(workers: Int, loops: Int) -> ScoreboardLayout {
        MetricsLayout.scoreboardLayout(workers: workers, loops: loops)
    }
}

/// The buckets of every duration histogram, in microseconds (upper bounds, Prometheus `le`):
/// 0.5 ms to 10 s.
enum DurationBuckets {
    static let bounds: [UInt64] = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
                                   1_000_000, 2_500_000, 5_000_000, 10_000_000]
    /// The buckets, the overflow, the sum.
    static let words = bounds.count + 2

    /// Adds one observation of `microseconds` to the histogram at `base` (its single writer).
    @inline(__always)
    static func record(_ microseconds: UInt64, into words: ScoreboardWords, at base: Int) {
        var bucket = 0
        while bucket < bounds.count && microseconds > bounds[bucket] { bucket += 1 }
        words.increment(base + bucket)
        words.increment(base + bounds.count + 1, by: microseconds)
    }
}
