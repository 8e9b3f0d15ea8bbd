import Postgres

/// `GET /api/v1/reconciliation/logs?hours=H&limit=L`: the user's rows of the last H hours.
enum ReconciliationLogsView: Endpoint {
    typealias Parameters = Query
    static let path = "reconciliation/logs"
    static let cacheName = "logs"

    struct Query: Equatable, Sendable {
        var hours: Int
        var limit: Int

        static let hoursRange = 1...168
        static let limitRange = 1...500

        init(hours: Int = 1, limit: Int = 100) {
            self.hours = hours
            self.limit = limit
        }

        init(_ parameters: QueryParameters) throws(APIError) {
            hours = try parameters.integer("hours", in: Self.hoursRange, default: 1)
            limit = try parameters.integer("limit", in: Self.limitRange, default: 100)
        }
    }

    static func parameters(query: QueryParameters, pathSegment: Substring?) throws(APIError) -> Query {
        try Query(query)
    }

    static func cacheKeyPart(_ query: Query) -> String { "h\(query.hours):l\(query.limit)" }

    static let window = PreparedStatement(name: "logs_window", sql: """
        SELECT \(LogEvent.selectList)
        FROM reconciliation_logs
        WHERE user_id = $1 AND created_at >= now() - make_interval(hours => $2::int)
        ORDER BY created_at DESC, id DESC
        LIMIT $3::int
        """)

    static func render(_ query: Query, user: UserID, now: Timestamp, database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        let events = try decode(try database.execute(window, [user.uuid, String(query.hours), String(query.limit)]))
        // The oldest row shown is the first to leave the window.
        let changesAt = events.map(\.createdAt).min()?.leavingWindow(ofSeconds: Int64(query.hours) * 3600)
        return RenderedView(body: render(events, query: query, user: user), changesAt: changesAt)
    }

    static func decode(_ result: PostgresResult) throws(PostgresError) -> [LogEvent] {
        try NamedRows(result, LogEvent.Column.self).all.map(LogEvent.init)
    }

    static func render(_ events: [LogEvent], query: Query, user: UserID) -> [UInt8] {
        var json = JSONWriter(capacity: 256 + events.count * 256)
        json.object { json in
            json.field("user_id", user.uuid)
            json.field("hours", query.hours)
            json.events("events", events)
        }
        return json.bytes
    }
}
