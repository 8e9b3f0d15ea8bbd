/// The decisions of `ReadReplica`, without I/O: whether a view's query may run on the streaming
/// replica, when to measure the replica again, and how long to leave it alone after a failure.
/// Times are monotonic milliseconds; positions are WAL byte positions (`pg_lsn - '0/0'`).
///
/// A view runs on the replica only when it is known to have replayed at least as far as the
/// position the view's tags carry (`StoredTag`, written by the change listener after the
/// commits they answer), so nothing cached from it is older than the invalidation it answers;
/// views without a known position (uncached answers, generations a worker created) run on the
/// primary. Within one session the replica's replay position only grows, so a position measured
/// earlier is a safe lower bound; it is measured again when a view needs more, at most every
/// `remeasureMilliseconds`, and from scratch on a new session (`sessionChanged`: the replica may
/// have restarted from an older point, or another server answers the URL). A replica whose lag (`pg_last_xact_replay_timestamp`, 0 while it has
/// replayed all it received) exceeds `maximumLagMilliseconds` is not used until a measurement
/// older than `lagRefreshMilliseconds` says otherwise. A failed measurement or query leaves the
/// replica alone for `initialRetryMilliseconds`, doubling to `maximumRetryMilliseconds` while
/// it keeps failing (each retry may cost one request a connect timeout).
struct ReplicaStateMachine {
    enum Decision: Equatable {
        case replica
        /// Measure the replica first (`measured` or `failed`), then decide again.
        case measure
        case primary(Reason)
    }

    /// Why a view runs on the primary.
    enum Reason: Equatable {
        /// The view's tags carry no position.
        case positionUnknown
        /// The replica has not replayed as far as the view needs.
        case behind
        case lagging
        /// The last query or measurement failed, or the server is not in recovery (not a replica).
        case unavailable
    }

    static let remeasureMilliseconds: UInt64 = 5
    static let lagRefreshMilliseconds: UInt64 = 1_000
    static let initialRetryMilliseconds: UInt64 = 1_000
    static let maximumRetryMilliseconds: UInt64 = 8_000

    let maximumLagMilliseconds: Int64
    private(set) var replayed: UInt64 = 0
    private(set) var lagMilliseconds: Int64?
    private var measuredAt: UInt64?
    private var unavailableUntil: UInt64 = 0
    private var failures = 0

    init(maximumLagMilliseconds: Int64) {
        self.maximumLagMilliseconds = maximumLagMilliseconds
    }

    func decide(needing position: UInt64?, now: UInt64) -> Decision {
        guard let position else { return .primary(.positionUnknown) }
        if now < unavailableUntil { return .primary(.unavailable) }
        guard let measuredAt, let lagMilliseconds else { return .measure }
        let age = now - measuredAt
        if lagMilliseconds > maximumLagMilliseconds {
            return age >= Self.lagRefreshMilliseconds ? .measure : .primary(.lagging)
        }
        if replayed >= position { return .replica }
        return age >= Self.remeasureMilliseconds ? .measure : .primary(.behind)
    }

    /// A measurement: the replay position and the lag in milliseconds; `nil` position when the
    /// server is not in recovery (a primary, or a promoted replica): not used as a replica.
    mutating func measured(replayed position: UInt64?, lagMilliseconds lag: Int64, now: UInt64) {
        guard let position else {
            failed(now: now)
            return
        }
        replayed = max(replayed, position)
        lagMilliseconds = lag
        measuredAt = now
        failures = 0
    }

    mutating func failed(now: UInt64) {
        unavailableUntil = now + min(Self.maximumRetryMilliseconds, Self.initialRetryMilliseconds << min(failures, 8))
        failures += 1
        sessionChanged()
    }

    /// The connection is a new session: nothing measured on the old one holds.
    mutating func sessionChanged() {
        replayed = 0
        measuredAt = nil
        lagMilliseconds = nil
    }
}
