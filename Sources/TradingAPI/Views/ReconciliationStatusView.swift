import Postgres

/// `GET /api/v1/reconciliation/status`: the sync picture.
enum ReconciliationStatusView {
    static let summary = PreparedStatement(name: "status_summary", sql: """
        SELECT
            (SELECT count(*) FROM reconciliation_logs WHERE user_id = $1 AND event_type = 'sync'),
            s.status, s.duration_ms, s.error_message, (extract(epoch FROM s.created_at) * 1000000)::int8,
            o.open_count, o.matched_count, o.diverging_count,
            (extract(epoch FROM now()) * 1000000)::int8
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
        ) s ON true
        """)

    static let recentEvents = PreparedStatement(name: "status_recent_events", sql: """
        SELECT \(LogEvent.columns)
        FROM reconciliation_logs
        WHERE user_id = $1
        ORDER BY created_at DESC, id DESC
        LIMIT 5
        """)

    static func load(user: UserID, from database: PostgresConnection) throws(PostgresError) -> ReconciliationStatus {
        let summary = try database.rows(Self.summary, [user.uuid])
        let events = try database.rows(recentEvents, [user.uuid])
        let lastSync = summary.timestamp(0, 4).map { at in
            LastSync(status: summary.string(0, 1) ?? "", durationMilliseconds: summary.int(0, 2),
                     errorMessage: summary.string(0, 3), at: at)
        }
        return ReconciliationStatus(
            lastSync: lastSync, totalSyncs: summary.int(0, 0) ?? 0, openPositions: summary.int(0, 5) ?? 0,
            matchedPositions: summary.int(0, 6) ?? 0, divergences: summary.int(0, 7) ?? 0,
            recentEvents: (0..<events.count).map { LogEvent(events, $0) },
            now: summary.timestamp(0, 8) ?? Timestamp(microseconds: 0))
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
