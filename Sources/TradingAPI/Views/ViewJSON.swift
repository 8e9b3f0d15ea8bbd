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

/// Reads the event columns that `LogEvent.columns` selects, starting at column `first`.
extension LogEvent {
    /// The select list every event query uses, in this order.
    static let columns = """
        id::text, event_type, status, mt5_position_id, symbol, matched, divergence_reason, error_message,
        (extract(epoch FROM created_at) * 1000000)::int8
        """

    init(_ rows: RowReader, _ row: Int, from first: Int = 0) {
        self.init(id: rows.string(row, first) ?? "", eventType: rows.string(row, first + 1) ?? "",
                  status: rows.string(row, first + 2) ?? "", ticket: rows.int64(row, first + 3),
                  symbol: rows.string(row, first + 4) ?? "", matched: rows.int(row, first + 5),
                  divergenceReason: rows.string(row, first + 6), errorMessage: rows.string(row, first + 7),
                  createdAt: rows.timestamp(row, first + 8) ?? Timestamp(microseconds: 0))
    }
}
