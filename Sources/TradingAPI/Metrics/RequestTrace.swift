import Logging

/// Where one request's time went, phase by phase (`RequestPhase`), on the monotonic clock; it
/// shows the phase on the status page as the request moves, and becomes the slow log's line.
struct RequestTrace {
    private let activity: LoopActivity?
    private let started: ContinuousClock.Instant
    private var phaseStarted: ContinuousClock.Instant
    private var phase = RequestPhase.route
    /// Time spent in each phase so far, by `RequestPhase.rawValue` (converted to microseconds only
    /// when read: the conversion costs more than the clock).
    private var durations = InlineArray<5, Duration>(repeating: .zero)
    /// Filled in once known, for the slow log.
    var route = MetricsLayout.unmatchedRoute
    var user: UserID?

    init(activity: LoopActivity?) {
        self.activity = activity
        started = .now
        phaseStarted = started
    }

    /// Ends the current phase and starts `next`.
    mutating func enter(_ next: RequestPhase) {
        let now = ContinuousClock.now
        durations[phase.rawValue] += now - phaseStarted
        phaseStarted = now
        phase = next
        activity?.enter(next)
    }

    /// A view renders while it queries, so the status page shows the whole of it as `query`;
    /// afterwards all but `databaseMicroseconds` of that time moves to `render`.
    mutating func splitQuery(databaseMicroseconds: UInt64) {
        let query = RequestPhase.query.rawValue
        let moved = max(.zero, durations[query] - .microseconds(Int64(databaseMicroseconds)))
        durations[query] -= moved
        durations[RequestPhase.render.rawValue] += moved
    }

    /// Microseconds spent in `phase` so far.
    func microseconds(in phase: RequestPhase) -> UInt64 {
        Self.microseconds(durations[phase.rawValue])
    }

    /// Ends the last phase; the request's whole time.
    mutating func finish() -> UInt64 {
        enter(phase)
        return Self.microseconds(ContinuousClock.now - started)
    }

    /// The slow log's line: `slow request` with the route, the user, the status and each phase
    /// in milliseconds.
    func logSlow(_ request: APIRequest, status: Int, totalMicroseconds: UInt64, logger: Logger) {
        var metadata: Logger.Metadata = [
            "route": "\(MetricsLayout.routes[route])", "method": "\(request.method)", "status": "\(status)",
            "user": "\(user?.uuid ?? "-")", "duration_ms": "\(Self.milliseconds(totalMicroseconds))",
        ]
        for phase in RequestPhase.allCases {
            metadata["\(phase.label)_ms"] = "\(Self.milliseconds(microseconds(in: phase)))"
        }
        logger.warning("slow request", metadata: metadata)
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    }

    /// "12.345"
    private static func milliseconds(_ microseconds: UInt64) -> String {
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
