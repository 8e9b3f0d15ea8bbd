import Postgres

/// `GET /api/v1/positions/open?symbol=S` and `GET /api/v1/positions/{ticket}`.
enum PositionsView {
    /// `^[A-Z0-9._]{1,20}$`, or `nil` for no filter.
    static func symbolFilter(_ parameters: QueryParameters) throws(APIError) -> String? {
        guard let symbol = parameters["symbol"] else { return nil }
        let valid = (1...20).contains(symbol.utf8.count) && symbol.utf8.allSatisfy { byte in
            (0x41...0x5a).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2e || byte == 0x5f
        }
        guard valid else { throw .badRequest("symbol must match ^[A-Z0-9._]{1,20}$") }
        return symbol
    }

    /// `{ticket}`: plain decimal digits that fit a bigint.
    static func ticket(_ text: Substring) throws(APIError) -> Int64 {
        guard let ticket = QueryParameters.plainInteger(text) else {
            throw .badRequest("ticket must be a whole number")
        }
        return Int64(ticket)
    }

    /// The columns `PositionState.init(_:_:)` reads, in this order.
    private static let columns = """
        p.ticket, l.symbol, l.direction, l.volume, l.entry_price, l.current_price, l.take_profit, l.stop_loss,
        l.matched, l.divergence_reason,
        (extract(epoch FROM p.opened_at) * 1000000)::int8, (extract(epoch FROM p.updated_at) * 1000000)::int8,
        coalesce(i.contract_size, 1), p.is_open, l.close_reason, l.closed_price, l.pnl_gbp
        """

    static let open = PreparedStatement(name: "positions_open", sql: """
        SELECT \(columns)
        FROM position_state p
        JOIN reconciliation_logs l ON l.id = p.latest_id AND l.user_id = p.user_id
        LEFT JOIN instruments i ON i.symbol = l.symbol
        WHERE p.user_id = $1 AND p.is_open AND ($2::varchar IS NULL OR l.symbol = $2::varchar)
        ORDER BY p.updated_at DESC, p.ticket ASC
        """)

    static let one = PreparedStatement(name: "positions_one", sql: """
        SELECT \(columns)
        FROM position_state p
        JOIN reconciliation_logs l ON l.id = p.latest_id AND l.user_id = p.user_id
        LEFT JOIN instruments i ON i.symbol = l.symbol
        WHERE p.user_id = $1 AND p.ticket = $2::int8
        """)

    static let latestEquity = PreparedStatement(name: "equity_latest", sql: """
        SELECT equity, peak_equity
        FROM equity_snapshots
        WHERE user_id = $1
        ORDER BY recorded_at DESC
        LIMIT 1
        """)

    static func loadOpen(user: UserID, symbol: String?, from database: PostgresConnection) throws(PostgresError) -> OpenPositions {
        let rows = try database.rows(open, [user.uuid, symbol])
        let equity = try loadEquity(user: user, from: database)
        return OpenPositions(positions: (0..<rows.count).map { PositionState(rows, $0) }, equity: equity?.equity)
    }

    static func loadOne(user: UserID, ticket: Int64, from database: PostgresConnection) throws(PostgresError) -> PositionState? {
        let rows = try database.rows(one, [user.uuid, String(ticket)])
        return rows.count == 0 ? nil : PositionState(rows, 0)
    }

    static func loadEquity(user: UserID, from database: PostgresConnection) throws(PostgresError) -> EquitySnapshot? {
        let rows = try database.rows(latestEquity, [user.uuid])
        guard rows.count > 0, let equity = rows.double(0, 0), let peak = rows.double(0, 1) else { return nil }
        return EquitySnapshot(equity: equity, peakEquity: peak)
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

    static func render(_ position: PositionState) -> [UInt8] {
        var json = JSONWriter(capacity: 512)
        json.position(position, detail: true)
        return json.bytes
    }
}

extension PositionState {
    init(_ rows: RowReader, _ row: Int) {
        self.init(
            ticket: rows.int64(row, 0) ?? 0, symbol: rows.string(row, 1) ?? "", direction: rows.string(row, 2) ?? "",
            volume: rows.double(row, 3) ?? 0, entryPrice: rows.double(row, 4) ?? 0, currentPrice: rows.double(row, 5),
            takeProfit: rows.double(row, 6), stopLoss: rows.double(row, 7), matched: rows.int(row, 8),
            divergenceReason: rows.string(row, 9),
            openedAt: rows.timestamp(row, 10) ?? Timestamp(microseconds: 0),
            updatedAt: rows.timestamp(row, 11) ?? Timestamp(microseconds: 0),
            contractSize: rows.double(row, 12) ?? 1, isOpen: rows.bool(row, 13) ?? false,
            closeReason: rows.string(row, 14), closedPrice: rows.double(row, 15), pnlGBP: rows.double(row, 16))
    }
}
