import Logging
import Postgres
import WorkerPool

/// Where a view's query runs: the streaming replica of `DATABASE_READ_URL` when it is known to
/// have replayed as far as the view needs (`ReplicaStateMachine`), the primary otherwise. Writes,
/// health and uncached answers never come here. Owned by one request loop, like its connection.
public final class ReadReplica {
    private let connection: PostgresConnection
    private var machine: ReplicaStateMachine
    /// The last reason a view went to the primary instead, logged once per change.
    private var lastFallback: ReplicaStateMachine.Reason?
    /// The connection's session the machine's measurements are of (`PostgresConnection.sessions`).
    private var measuredSession: UInt64 = 0

    /// How long a query may go unacknowledged by an unreachable replica before it fails and the
    /// view runs on the primary (the replica's connection's `tcp_user_timeout`).
    public static let tcpUserTimeoutMilliseconds = 1_000

    /// `maximumLagMilliseconds`: beyond this the replica is not used (`REPLICA_MAX_LAG_MS`).
    public init(connection: PostgresConnection, maximumLagMilliseconds: Int) {
        self.connection = connection
        machine = ReplicaStateMachine(maximumLagMilliseconds: Int64(maximumLagMilliseconds))
    }

    /// The replay position (bytes of WAL) and the lag (ms; 0 while everything received is replayed).
    /// The position is NULL when the server is not in recovery: not a replica.
    static let measurement = PreparedStatement(name: "replica_position", sql: """
        SELECT (pg_last_wal_replay_lsn() - '0/0')::int8 AS replayed,
               COALESCE(CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                             ELSE (extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::int8
                        END, 0) AS lag_ms
        """)

    /// The replica's connection when a view needing `position` (`ResponseCache.Tags`) may run
    /// there; `nil`: run it on the primary.
    func connection(needing position: UInt64?, context: RequestContext) -> PostgresConnection? {
        if connection.sessions != measuredSession {
            machine.sessionChanged()
            measuredSession = connection.sessions
        }
        var decision = machine.decide(needing: position, now: Self.now())
        if decision == .measure {
            measure(context: context)
            decision = machine.decide(needing: position, now: Self.now())
        }
        switch decision {
        case .replica:
            return connection
        case .primary(let reason):
            if reason != lastFallback, reason == .lagging || reason == .unavailable {
                context.logger.info("views read from the primary", metadata: ["reason": "\(reason)",
                                    "replica lag ms": "\(machine.lagMilliseconds.map(String.init) ?? "-")"])
            }
            lastFallback = reason
            return nil
        case .measure:
            return nil
        }
    }

    /// The session a view's query is about to run on; `isSameSession` after it says whether the
    /// answer came from the session that was measured (a reconnect in between may have reached a
    /// replica that restarted from an older point: the answer must not be used).
    var session: UInt64 { connection.sessions }

    /// (A changed session is measured from scratch by the next `connection(needing:)`.)
    func isSameSession(_ session: UInt64) -> Bool {
        connection.sessions == session
    }

    /// A view's query failed on the replica: left alone for a while, and the view is run on the primary.
    func failed(_ error: PostgresError, context: RequestContext) {
        machine.failed(now: Self.now())
        context.logger.warning("replica query failed; views read from the primary", metadata: ["error": "\(error)"])
        lastFallback = .unavailable
    }

    private func measure(context: RequestContext) {
        do {
            let result = try connection.execute(Self.measurement, [])
            let replayed = result.string(0, try result.column(named: "replayed")).flatMap { UInt64($0) }
            let lag = result.int(0, try result.column(named: "lag_ms")) ?? 0
            if replayed == nil, lastFallback != .unavailable {
                context.logger.warning("DATABASE_READ_URL is not a replica in recovery; views read from the primary")
            }
            machine.measured(replayed: replayed, lagMilliseconds: Int64(lag), now: Self.now())
            measuredSession = connection.sessions  // a reconnect inside `execute` measured the new session
        } catch {
            failed(error, context: context)
        }
    }

    /// The replica connection's time in `execute` (`PostgresConnection.executionMicroseconds`).
    var executionMicroseconds: UInt64 { connection.executionMicroseconds }

    private static func now() -> UInt64 {
        UInt64(max(0, MonotonicClock.nanoseconds() / 1_000_000))
    }
}
