import Postgres

/// `GET /api/v1/reconciliation/status`: the sync picture.
enum ReconciliationStatusView: Endpoint {
    typealias Parameters = Void
    static let path = "reconciliation/status"
    static let cacheName = "status"

    /// The summary's columns, as `statement` names them.
    enum SummaryColumn: Int, ResultColumn {
        case totalSyncs, lastStatus, lastDuration, lastErrorMessage, lastSyncAt, openCount
        case matchedCount, divergingCount

        var name: String {
            switch self {
            case .totalSyncs: "total_syncs"
            case .lastStatus: "last_status"
            case .lastDuration: "last_duration_ms"
            case .lastErrorMessage: "last_error_message"
            case .lastSyncAt: "last_sync_us"
            case .openCount: "open_count"
            case .matchedCount: "matched_count"
            case .divergingCount: "diverging_count"
            }
        }
    }

    /// One round trip: the summary row joined with the (up to 5) newest events, so each row
    /// carries the summary and one event (`NULL`s without one).
    static let statement = PreparedStatement(name: "status_view", sql: """
        SELECT s.*, e.*
        FROM (
            SELECT
                (SELECT count(*) FROM reconciliation_logs WHERE user_id = $1 AND event_type = 'sync') AS total_syncs,
                last.status AS last_status, last.duration_ms AS last_duration_ms,
                last.error_message AS last_error_message,
                (extract(epoch FROM last.created_at) * 1000000)::int8 AS last_sync_us,
                o.open_count, o.matched_count, o.diverging_count
            FROM (
                SELECT count(*) AS open_count,
                       count(*) FILTER (WHERE l.matched = 1) AS matched_count,
                       count(*) FILTER (WHERE l.matched = 2) AS diverging_count
                FROM position_state p
                JOIN reconciliation_logs l ON l.id = p.latest_id AND l.user_id = p.user_id
                WHERE p.user_id = $1 AND p.is_open
            ) o
            LEFT JOIN LATERAL (
                SELECT status, duration_ms, error_message, created_at
                FROM reconciliation_logs
                WHERE user_id = $1 AND event_type = 'sync'
                ORDER BY created_at DESC, id DESC
                LIMIT 1
            ) last ON true
        ) s
        LEFT JOIN LATERAL (
            SELECT \(LogEvent.selectList), created_at AS sort_at, id AS sort_id
            FROM reconciliation_logs
            WHERE user_id = $1
            ORDER BY created_at DESC, id DESC
            LIMIT 5
        ) e ON true
        ORDER BY e.sort_at DESC, e.sort_id DESC
        """)

    static func render(_: Void, context: ParameterContext, now: Timestamp, database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        let user = context.user
        let status = try decode(try database.execute(statement, [user.uuid]), now: now)
        return RenderedView(body: render(status, user: user), changesAt: status.changesAt)
    }

    static func decode(_ result: PostgresResult, now: Timestamp) throws(PostgresError) -> ReconciliationStatus {
        let events = try NamedRows(result, LogEvent.Column.self).all.filter { !$0.isNull(.id) }.map(LogEvent.init)
        // The summary is an aggregate: always one row, repeated on every event's row.
        guard let summary = try NamedRows(result, SummaryColumn.self).first else {
            return ReconciliationStatus(lastSync: nil, totalSyncs: 0, openPositions: 0, matchedPositions: 0,
                                        divergences: 0, recentEvents: events, now: now)
        }
        let lastSync = summary.timestamp(.lastSyncAt).map { at in
            LastSync(status: summary.string(.lastStatus) ?? "", durationMilliseconds: summary.int(.lastDuration),
                     errorMessage: summary.string(.lastErrorMessage), at: at)
        }
        return ReconciliationStatus(
            lastSync: lastSync, totalSyncs: summary.int(.totalSyncs) ?? 0, openPositions: summary.int(.openCount) ?? 0,
            matchedPositions: summary.int(.matchedCount) ?? 0, divergences: summary.int(.divergingCount) ?? 0,
            recentEvents: events, now: now)
    }

    static func render(_ status: ReconciliationStatus, user: UserID) -> [UInt8] {
        var json = JSONWriter(capacity: 2048)
        json.object { json in
            json.field("user_id", user.uuid)
            json.field("status", status.status)
            json.field("last_sync_at", status.lastSync?.at)
            json.field("total_syncs", status.totalSyncs)
            json.field("last_sync_duration_ms", status.lastSync?.durationMilliseconds)
            json.field("open_positions_count", status.openPositions)
            json.field("matched_positions", status.matchedPositions)
            json.field("divergences_detected", status.divergences)
            json.events("recent_events", status.recentEvents)
            json.field("error_message", status.errorMessage)
        }
        return json.bytes
    }
}
