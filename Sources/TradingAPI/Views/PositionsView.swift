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

    /// One round trip: the latest equity (columns 0–1, for the percentage) joined with the open
    /// positions from column 2 on; a single row of `NULL` positions when there are none.
    static let open = PreparedStatement(name: "positions_open", sql: """
        SELECT eq.equity, eq.peak_equity, pos.*
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (\(latestEquitySQL)) eq ON true
        LEFT JOIN LATERAL (
            SELECT \(columns), p.updated_at AS sort_at
            FROM position_state p
            JOIN reconciliation_logs l ON l.id = p.latest_id AND l.user_id = p.user_id
            LEFT JOIN instruments i ON i.symbol = l.symbol
            WHERE p.user_id = $1 AND p.is_open AND ($2::varchar IS NULL OR l.symbol = $2::varchar)
        ) pos ON true
        ORDER BY pos.sort_at DESC, pos.ticket ASC
        """)

    static let one = PreparedStatement(name: "positions_one", sql: """
        SELECT \(columns)
        FROM position_state p
        JOIN reconciliation_logs l ON l.id = p.latest_id AND l.user_id = p.user_id
        LEFT JOIN instruments i ON i.symbol = l.symbol
        WHERE p.user_id = $1 AND p.ticket = $2::int8
        """)

    /// The user's latest equity snapshot (equity, peak_equity); used inside other statements.
    static let latestEquitySQL = """
        SELECT equity, peak_equity FROM equity_snapshots WHERE user_id = $1 ORDER BY recorded_at DESC LIMIT 1
        """

    static func loadOpen(user: UserID, symbol: String?, from database: PostgresConnection) throws(PostgresError) -> OpenPositions {
        let rows = try database.rows(open, [user.uuid, symbol])
        let positions = (0..<rows.count).filter { !rows.isNull($0, 2) }.map { PositionState(rows, $0, from: 2) }
        return OpenPositions(positions: positions, equity: EquitySnapshot(rows, 0, from: 0)?.equity)
    }

    static func loadOne(user: UserID, ticket: Int64, from database: PostgresConnection) throws(PostgresError) -> PositionState? {
        let rows = try database.rows(one, [user.uuid, String(ticket)])
        return rows.count == 0 ? nil : PositionState(rows, 0)
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
    init(_ rows: RowReader, _ row: Int, from first: Int = 0) {
        let c = first
        self.init(
            ticket: rows.int64(row, c) ?? 0, symbol: rows.string(row, c + 1) ?? "", direction: rows.string(row, c + 2) ?? "",
            volume: rows.double(row, c + 3) ?? 0, entryPrice: rows.double(row, c + 4) ?? 0, currentPrice: rows.double(row, c + 5),
            takeProfit: rows.double(row, c + 6), stopLoss: rows.double(row, c + 7), matched: rows.int(row, c + 8),
            divergenceReason: rows.string(row, c + 9),
            openedAt: rows.timestamp(row, c + 10) ?? Timestamp(microseconds: 0),
            updatedAt: rows.timestamp(row, c + 11) ?? Timestamp(microseconds: 0),
            contractSize: rows.double(row, c + 12) ?? 1, isOpen: rows.bool(row, c + 13) ?? false,
            closeReason: rows.string(row, c + 14), closedPrice: rows.double(row, c + 15), pnlGBP: rows.double(row, c + 16))
    }
}

extension EquitySnapshot {
    /// `nil` when the columns are `NULL` (no snapshot).
    init?(_ rows: RowReader, _ row: Int, from first: Int) {
        guard rows.count > row, let equity = rows.double(row, first), let peak = rows.double(row, first + 1) else { return nil }
        self.init(equity: equity, peakEquity: peak)
    }
}
