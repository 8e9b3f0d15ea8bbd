import Postgres

/// `GET /api/v1/reconciliation/status`: the sync picture.
enum ReconciliationStatusView {
    /// One round trip: the summary row joined with the (up to 5) newest events, so each row
    /// carries the summary in columns 0–8 and one event from column 9 on (`NULL`s without one).
    static let statement = PreparedStatement(name: "status_view", sql: """
        SELECT s.*, e.*
        FROM (
            SELECT
                (SELECT count(*) FROM reconciliation_logs WHERE user_id = $1 AND event_type = 'sync') AS total_syncs,
                last.status, last.duration_ms, last.error_message,
                (extract(epoch FROM last.created_at) * 1000000)::int8 AS last_sync_us,
                o.open_count, o.matched_count, o.diverging_count,
                (extract(epoch FROM now()) * 1000000)::int8 AS now_us
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
            SELECT \(LogEvent.columns), created_at AS sort_at, id AS sort_id
            FROM reconciliation_logs
            WHERE user_id = $1
            ORDER BY created_at DESC, id DESC
            LIMIT 5
        ) e ON true
        ORDER BY e.sort_at DESC, e.sort_id DESC
        """)

    static func load(user: UserID, from database: PostgresConnection) throws(PostgresError) -> ReconciliationStatus {
        let rows = try database.rows(statement, [user.uuid])
        let lastSync = rows.timestamp(0, 4).map { at in
            LastSync(status: rows.string(0, 1) ?? "", durationMilliseconds: rows.int(0, 2),
                     errorMessage: rows.string(0, 3), at: at)
        }
        let events = (0..<rows.count).filter { !rows.isNull($0, 9) }.map { LogEvent(rows, $0, from: 9) }
        return ReconciliationStatus(
            lastSync: lastSync, totalSyncs: rows.int(0, 0) ?? 0, openPositions: rows.int(0, 5) ?? 0,
            matchedPositions: rows.int(0, 6) ?? 0, divergences: rows.int(0, 7) ?? 0,
            recentEvents: events, now: rows.timestamp(0, 8) ?? Timestamp(microseconds: 0))
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
