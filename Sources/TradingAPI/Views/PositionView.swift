import Postgres

/// `GET /api/v1/positions/{ticket}`: one of the user's positions, open or closed.
enum PositionView: Endpoint {
    typealias Parameters = Int64
    static let path = "positions/{ticket}"
    static let cacheName = "position"

    /// `{ticket}`: plain decimal digits that fit a bigint.
    static func parameters(query: QueryParameters, pathSegment: Substring?, context: ParameterContext) throws(APIError) -> Int64 {
        guard let pathSegment, let ticket = QueryParameters.plainInteger(pathSegment) else {
            throw .badRequest("ticket must be a whole number")
        }
        return Int64(ticket)
    }

    static func cacheKeyPart(_ ticket: Int64) -> String { String(ticket) }

    static let statement = PreparedStatement(name: "positions_one", sql: """
        SELECT \(PositionState.selectList)
        FROM \(PositionState.joinedTables)
        WHERE p.user_id = $1 AND p.ticket = $2::int8
        """)

    /// `nil` (404) when the user has no position with that ticket.
    static func render(_ ticket: Int64, context: ParameterContext, now: Timestamp, database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        let user = context.user
        return try decode(try database.execute(statement, [user.uuid, String(ticket)])).map { RenderedView(body: render($0)) }
    }

    static func decode(_ result: PostgresResult) throws(PostgresError) -> PositionState? {
        try NamedRows(result, PositionState.Column.self).first.map(PositionState.init)
    }

    static func render(_ position: PositionState) -> [UInt8] {
        var json = JSONWriter(capacity: 512)
        json.position(position, detail: true)
        return json.bytes
    }
}
