/// JSON forms of the domain values shared by several views.
extension JSONWriter {
    mutating func field(_ key: StaticString, _ value: Timestamp?) {
        self.key(key)
        string(value?.rfc3339)
    }

    mutating func field(_ key: StaticString, _ value: Int64?) {
        self.key(key)
        int(value.map(Int.init))
    }

    /// Money and percentages: rounded once, at the end, to 2 decimals.
    mutating func rounded(_ key: StaticString, _ value: Double?) {
        field(key, value.map(Rounding.twoDecimals))
    }

    mutating func event(_ event: LogEvent) {
        object { json in
            json.field("id", event.id)
            json.field("event_type", event.eventType)
            json.field("status", event.status)
            json.field("ticket", event.ticket)
            json.field("symbol", event.symbol)
            json.field("matched", event.matched)
            json.field("divergence_reason", event.divergenceReason)
            json.field("error_message", event.errorMessage)
            json.field("created_at", event.createdAt)
        }
    }

    mutating func events(_ key: StaticString, _ events: [LogEvent]) {
        self.key(key)
        array { json in events.forEach { json.event($0) } }
    }

    /// The position object; `detail` adds the fields of `GET /positions/{ticket}`.
    mutating func position(_ position: PositionState, detail: Bool = false) {
        object { json in
            json.field("ticket", position.ticket)
            json.field("symbol", position.symbol)
            json.field("direction", position.direction)
            json.field("volume", position.volume)
            json.field("entry_price", position.entryPrice)
            json.field("current_price", position.currentPrice)
            json.field("take_profit", position.takeProfit)
            json.field("stop_loss", position.stopLoss)
            json.rounded("unrealized_pnl", position.unrealizedPnL)
            json.field("matched_with_bot", position.isMatchedWithBot)
            json.field("divergence_reason", position.divergenceReason)
            json.field("opened_at", position.openedAt)
            json.field("updated_at", position.updatedAt)
            if detail {
                json.field("open", position.isOpen)
                json.field("close_reason", position.isOpen ? nil : position.closeReason)
                json.field("closed_price", position.isOpen ? nil : position.closedPrice)
                json.field("realized_pnl", position.isOpen ? nil : position.pnlGBP)
            }
        }
    }
}

extension LogEvent {
    /// The event columns, as `selectList` names them.
    enum Column: Int, ResultColumn {
        case id, eventType, status, ticket, symbol, matched, divergenceReason, errorMessage
        case createdAt

        var name: String {
            switch self {
            case .id: "id"
            case .eventType: "event_type"
            case .status: "status"
            case .ticket: "mt5_position_id"
            case .symbol: "symbol"
            case .matched: "matched"
            case .divergenceReason: "divergence_reason"
            case .errorMessage: "error_message"
            case .createdAt: "created_at_us"
            }
        }
    }

    /// The select list of every event query, on `reconciliation_logs`.
    static let selectList = """
        id::text AS id, event_type, status, mt5_position_id, symbol, matched, divergence_reason, error_message,
        (extract(epoch FROM created_at) * 1000000)::int8 AS created_at_us
        """

    init(_ row: Row<Column>) {
        self.init(id: row.string(.id) ?? "", eventType: row.string(.eventType) ?? "",
                  status: row.string(.status) ?? "", ticket: row.int64(.ticket),
                  symbol: row.string(.symbol) ?? "", matched: row.int(.matched),
                  divergenceReason: row.string(.divergenceReason), errorMessage: row.string(.errorMessage),
                  createdAt: row.timestamp(.createdAt) ?? Timestamp(microseconds: 0))
    }
}
