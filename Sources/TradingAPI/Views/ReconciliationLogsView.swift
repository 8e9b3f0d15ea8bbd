import Postgres

/// `GET /api/v1/reconciliation/logs?hours=H&limit=L[&cursor=C]`: the user's rows of the last H
/// hours, newest first, a page of at most L; `next_cursor` resumes after the page's last row
/// (keyset on `created_at, id`, served by reconciliation_logs_user_time_idx; no offset).
enum ReconciliationLogsView: Endpoint {
    typealias Parameters = Query
    static let path = "reconciliation/logs"
    static let cacheName = "logs"

    struct Query: Equatable, Sendable {
        var hours: Int
        var limit: Int
        /// Where the previous page ended; `nil` for the first page.
        var after: LogCursor?

        static let hoursRange = 1...168
        static let limitRange = 1...500

        init(hours: Int = 1, limit: Int = 100, after: LogCursor? = nil) {
            self.hours = hours
            self.limit = limit
            self.after = after
        }
    }

    /// A cursor not issued to this user (another user's, edited, made up) is 400.
    static func parameters(query: QueryParameters, pathSegment: Substring?, context: ParameterContext) throws(APIError) -> Query {
        let hours = try query.integer("hours", in: Query.hoursRange, default: 1)
        let limit = try query.integer("limit", in: Query.limitRange, default: 100)
        guard let text = query["cursor"] else { return Query(hours: hours, limit: limit) }
        guard let cursor = context.cursors.decode(text, for: context.user) else {
            throw .badRequest("cursor is not one this service issued to this user")
        }
        return Query(hours: hours, limit: limit, after: cursor)
    }

    static func cacheKeyPart(_ query: Query) -> String {
        let page = query.after.map { ":c\($0.createdAt.microseconds).\($0.id)" } ?? ""
        return "h\(query.hours):l\(query.limit)" + page
    }

    /// One row more than the page: whether it exists decides `next_cursor`.
    static let window = PreparedStatement(name: "logs_window", sql: """
        SELECT \(LogEvent.selectList)
        FROM reconciliation_logs
        WHERE user_id = $1 AND created_at >= now() - make_interval(hours => $2::int)
        ORDER BY created_at DESC, id DESC
        LIMIT $3::int + 1
        """)

    /// The same after a cursor: rows strictly older than `($4, $5)` by `(created_at, id)`.
    static let windowAfter = PreparedStatement(name: "logs_window_after", sql: """
        SELECT \(LogEvent.selectList)
        FROM reconciliation_logs
        WHERE user_id = $1 AND created_at >= now() - make_interval(hours => $2::int)
          AND (created_at, id) < ($4::timestamptz, $5::uuid)
        ORDER BY created_at DESC, id DESC
        LIMIT $3::int + 1
        """)

    static func render(_ query: Query, context: ParameterContext, now: Timestamp, database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        let user = context.user
        var parameters: [String?] = [user.uuid, String(query.hours), String(query.limit)]
        if let after = query.after { parameters += [after.createdAt.rfc3339, after.id] }
        var events = try decode(try database.execute(query.after == nil ? window : windowAfter, parameters))
        // The oldest row fetched is the first to leave the window: the page, or `next_cursor`.
        let changesAt = events.map(\.createdAt).min()?.leavingWindow(ofSeconds: Int64(query.hours) * 3600)
        var next: String?
        if events.count > query.limit {
            events.removeLast(events.count - query.limit)
            next = events.last.map { context.cursors.encode(LogCursor(createdAt: $0.createdAt, id: $0.id), for: user) }
        }
        return RenderedView(body: render(events, query: query, user: user, nextCursor: next), changesAt: changesAt)
    }

    static func decode(_ result: PostgresResult) throws(PostgresError) -> [LogEvent] {
        try NamedRows(result, LogEvent.Column.self).all.map(LogEvent.init)
    }

    static func render(_ events: [LogEvent], query: Query, user: UserID, nextCursor: String? = nil) -> [UInt8] {
        var json = JSONWriter(capacity: 256 + events.count * 256)
        json.object { json in
            json.field("user_id", user.uuid)
            json.field("hours", query.hours)
            json.events("events", events)
            json.field("next_cursor", nextCursor)
        }
        return json.bytes
    }
}
