import Postgres

/// The columns and decoders shared by the position views and the guards.
extension PositionState {
    /// A position's columns, as `selectList` names them.
    enum Column: Int, ResultColumn {
        case ticket, symbol, direction, volume, entryPrice, currentPrice, takeProfit, stopLoss
        case matched, divergenceReason, openedAt, updatedAt, contractSize, isOpen, closeReason
        case closedPrice, pnlGBP

        var name: String {
            switch self {
            case .ticket: "ticket"
            case .symbol: "symbol"
            case .direction: "direction"
            case .volume: "volume"
            case .entryPrice: "entry_price"
            case .currentPrice: "current_price"
            case .takeProfit: "take_profit"
            case .stopLoss: "stop_loss"
            case .matched: "matched"
            case .divergenceReason: "divergence_reason"
            case .openedAt: "opened_at_us"
            case .updatedAt: "updated_at_us"
            case .contractSize: "contract_size"
            case .isOpen: "is_open"
            case .closeReason: "close_reason"
            case .closedPrice: "closed_price"
            case .pnlGBP: "pnl_gbp"
            }
        }
    }

    /// Over `position_state p` joined with its latest row `l` and the `instruments i` of its symbol.
    static let selectList = """
        p.ticket, l.symbol, l.direction, l.volume, l.entry_price, l.current_price, l.take_profit, l.stop_loss,
        l.matched, l.divergence_reason,
        (extract(epoch FROM p.opened_at) * 1000000)::int8 AS opened_at_us,
        (extract(epoch FROM p.updated_at) * 1000000)::int8 AS updated_at_us,
        coalesce(i.contract_size, 1) AS contract_size, p.is_open, l.close_reason, l.closed_price, l.pnl_gbp
        """

    /// The tables `selectList` reads, for a `FROM`.
    static let joinedTables = """
        position_state p
        JOIN reconciliation_logs l ON l.id = p.latest_id AND l.user_id = p.user_id
        LEFT JOIN instruments i ON i.symbol = l.symbol
        """

    init(_ row: Row<Column>) {
        self.init(
            ticket: row.int64(.ticket) ?? 0, symbol: row.string(.symbol) ?? "", direction: row.string(.direction) ?? "",
            volume: row.double(.volume) ?? 0, entryPrice: row.double(.entryPrice) ?? 0,
            currentPrice: row.double(.currentPrice), takeProfit: row.double(.takeProfit), stopLoss: row.double(.stopLoss),
            matched: row.int(.matched), divergenceReason: row.string(.divergenceReason),
            openedAt: row.timestamp(.openedAt) ?? Timestamp(microseconds: 0),
            updatedAt: row.timestamp(.updatedAt) ?? Timestamp(microseconds: 0),
            contractSize: row.double(.contractSize) ?? 1, isOpen: row.bool(.isOpen) ?? false,
            closeReason: row.string(.closeReason), closedPrice: row.double(.closedPrice), pnlGBP: row.double(.pnlGBP))
    }
}

extension EquitySnapshot {
    /// The snapshot's columns, as `latestSQL` names them.
    enum Column: Int, ResultColumn {
        case equity, peakEquity

        var name: String {
            switch self {
            case .equity: "equity"
            case .peakEquity: "peak_equity"
            }
        }
    }

    /// The user's ($1) latest snapshot; used inside other statements.
    static let latestSQL = """
        SELECT equity, peak_equity FROM equity_snapshots WHERE user_id = $1 ORDER BY recorded_at DESC LIMIT 1
        """

    /// `nil` when the columns are `NULL` (no snapshot).
    init?(_ row: Row<Column>) {
        guard let equity = row.double(.equity), let peak = row.double(.peakEquity) else { return nil }
        self.init(equity: equity, peakEquity: peak)
    }
}
