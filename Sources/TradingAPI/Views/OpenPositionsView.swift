import Postgres

/// `GET /api/v1/positions/open?symbol=S`: the open positions, their P&L and totals.
enum OpenPositionsView: Endpoint {
    /// The symbol filter; `nil` for all symbols.
    typealias Parameters = String?
    static let path = "positions/open"
    static let cacheName = "open"

    /// `symbol` must match `^[A-Z0-9._]{1,20}$`; absent means no filter.
    static func parameters(query: QueryParameters, pathSegment: Substring?, context: ParameterContext) throws(APIError) -> String? {
        guard let symbol = query["symbol"] else { return nil }
        let valid = (1...20).contains(symbol.utf8.count) && symbol.utf8AllSatisfy { byte in
            (0x41...0x5a).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2e || byte == 0x5f
        }
        guard valid else { throw .badRequest("symbol must match ^[A-Z0-9._]{1,20}$") }
        return symbol
    }

    static func cacheKeyPart(_ symbol: String?) -> String { symbol.map { "s\($0)" } ?? "all" }

    /// One round trip: the latest equity (for the percentage) joined with the open positions; a
    /// single row of `NULL` positions when there are none.
    static let statement = PreparedStatement(name: "positions_open", sql: """
        SELECT eq.equity, eq.peak_equity, pos.*
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (\(EquitySnapshot.latestSQL)) eq ON true
        LEFT JOIN LATERAL (
            SELECT \(PositionState.selectList), p.updated_at AS sort_at
            FROM \(PositionState.joinedTables)
            WHERE p.user_id = $1 AND p.is_open AND ($2::varchar IS NULL OR l.symbol = $2::varchar)
        ) pos ON true
        ORDER BY pos.sort_at DESC, pos.ticket ASC
        """)

    static func render(_ symbol: String?, context: ParameterContext, now: Timestamp, database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        let user = context.user
        return RenderedView(body: render(try decode(try database.execute(statement, [user.uuid, symbol])), user: user))
    }

    static func decode(_ result: PostgresResult) throws(PostgresError) -> OpenPositions {
        let positions = try NamedRows(result, PositionState.Column.self).all.filter { !$0.isNull(.ticket) }
        let equity = try NamedRows(result, EquitySnapshot.Column.self).first.flatMap(EquitySnapshot.init)
        return OpenPositions(positions: positions.map(PositionState.init), equity: equity?.equity)
    }

    static func render(_ open: OpenPositions, user: UserID) -> [UInt8] {
        var json = JSONWriter(capacity: 512 + open.positions.count * 400)
        json.object { json in
            json.field("user_id", user.uuid)
            json.field("total_positions", open.positions.count)
            json.rounded("total_unrealized_pnl", open.totalUnrealizedPnL)
            json.rounded("total_unrealized_pnl_pct", open.totalUnrealizedPnLPercent)
            json.key("positions")
            json.array { json in open.positions.forEach { json.position($0) } }
            json.field("last_updated_at", open.lastUpdatedAt)
        }
        return json.bytes
    }
}
