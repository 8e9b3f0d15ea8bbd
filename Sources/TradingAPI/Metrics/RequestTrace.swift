import Logging
import WorkerPool

/// Where one request's time went, phase by phase (`RequestPhase`), on the monotonic clock; it
/// shows the phase on the status page as the request moves, and becomes the slow log's line.
struct RequestTrace {
    private let activity: LoopActivity?
    /// `MonotonicClock` nanoseconds: two clock reads per phase change would be one too many.
    private let started: Int64
    private var phaseStarted: Int64
    private var phase = RequestPhase.route
    /// Nanoseconds spent in each phase so far.
    private var durations = PhaseDurations()
    /// Filled in once known, for the slow log.
    var route = MetricsLayout.unmatchedRoute
    var user: UserID?

    init(activity: LoopActivity?) {
        self.activity = activity
        started = MonotonicClock.nanoseconds()
        phaseStarted = started
    }

    /// Ends the current phase and starts `next`.
    mutating func enter(_ next: RequestPhase) {
        let now = MonotonicClock.nanoseconds()
        durations[phase] += now - phaseStarted
        phaseStarted = now
        phase = next
        activity?.enter(next)
    }

    /// A view renders while it queries, so the status page shows the whole of it as `query`;
    /// afterwards all but `databaseMicroseconds` of that time moves to `render`.
    mutating func splitQuery(databaseMicroseconds: UInt64) {
        let moved = max(0, durations[.query] - Int64(databaseMicroseconds) * 1000)
        durations[.query] -= moved
        durations[.render] += moved
    }

    /// Microseconds spent in `phase` so far.
    func microseconds(in phase: RequestPhase) -> UInt64 {
        UInt64(max(0, durations[phase] / 1000))
    }

    /// Ends the last phase; the request's whole time in microseconds.
    mutating func finish() -> UInt64 {
        enter(phase)
        return UInt64(max(0, (phaseStarted - started) / 1000))
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

    /// "12.345"
    private static func milliseconds(_ microseconds: UInt64) -> String {
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

/// One number per `RequestPhase`, in plain stored properties: no generic storage, so no runtime
/// metadata lookup per request (an `InlineArray` of `Duration` cost one).
private struct PhaseDurations {
    private var route: Int64 = 0, auth: Int64 = 0, cache: Int64 = 0, query: Int64 = 0, render: Int64 = 0

    subscript(phase: RequestPhase) -> Int64 {
        get {
            switch phase {
            case .route: route
            case .auth: auth
            case .cache: cache
            case .query: query
            case .render: render
            }
        }
        set {
            switch phase {
            case .route: route = newValue
            case .auth: auth = newValue
            case .cache: cache = newValue
            case .query: query = newValue
            case .render: render = newValue
            }
        }
    }
}
