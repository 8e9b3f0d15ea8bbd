import Crypto
import Postgres

/// `POST /api/v1/reconciliation/events`: `{"events":[event…]}` (1–1,000) → 201 `{"ids":[…]}`
/// in input order.
///
/// Events without an `id` get one derived from nginx's request id and their index, so a request
/// nginx passes on again after a broken upstream connection writes the same rows, and
/// `ON CONFLICT (id) DO NOTHING` writes them once. An event whose `id` already exists for the
/// same user is not written again (a retry); one whose `id` names another user's row is 409.
enum ReconciliationEventsWrite: WriteEndpoint {
    static let path = "reconciliation/events"

    struct Batch: Equatable {
        var events: [ReconciliationEventInput]
    }

    static func decode(_ body: [UInt8], requestID: String) throws(APIError) -> Batch {
        var events = try BatchDecoding.items(ReconciliationEventInput.self, from: body)
        var seen: [String: Int] = [:]
        for index in events.indices {
            let id = events[index].id ?? derivedID(requestID: requestID, index: index)
            if let first = seen.updateValue(index, forKey: id) {
                throw .badRequest("events[\(index)].id: repeats events[\(first)].id")
            }
            events[index].id = id
        }
        return Batch(events: events)
    }

    /// A UUID (RFC 9562 version 8, name-based) from the request id and the event's index.
    static func derivedID(requestID: String, index: Int) -> String {
        var bytes = Array(SHA256.hash(data: Array("trading-api event \(requestID) \(index)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x80
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let h = Array(bytes.hexDigits)
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-" + String(h[20..<32])
    }

    /// The 1-based position of the first event whose id names another user's row, or NULL.
    static let foreignID = PreparedStatement(name: "write_events_foreign_id", sql: """
        SELECT min(e.n)::int8 FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS e(id, user_id, n)
        JOIN reconciliation_logs l ON l.id = e.id
        WHERE l.user_id <> e.user_id
        """)

    static let insert = PreparedStatement(name: "write_events", sql: """
        INSERT INTO reconciliation_logs (
            id, user_id, signal_id, approval_id, event_type, status, mt5_position_id, symbol, direction,
            volume, entry_price, current_price, take_profit, stop_loss, matched, divergence_reason,
            slippage_pips, close_reason, closed_price, pnl_gbp, pnl_percent, duration_ms,
            guard_condition, guard_level, price_gap_pct, error_message, created_at, updated_at)
        SELECT
            id, user_id, signal_id, approval_id, event_type, status, mt5_position_id, symbol, direction,
            volume, entry_price, current_price, take_profit, stop_loss, matched, divergence_reason,
            slippage_pips, close_reason, closed_price, pnl_gbp, pnl_percent, duration_ms,
            guard_condition, guard_level, price_gap_pct, error_message,
            coalesce(created_at, now()), coalesce(updated_at, now())
        FROM jsonb_to_recordset($1::jsonb) AS e(
            id uuid, user_id uuid, signal_id uuid, approval_id uuid, event_type varchar(50), status varchar(50),
            mt5_position_id bigint, symbol varchar(20), direction varchar(10), volume float8, entry_price float8,
            current_price float8, take_profit float8, stop_loss float8, matched smallint,
            divergence_reason varchar(100), slippage_pips float8, close_reason varchar(100), closed_price float8,
            pnl_gbp float8, pnl_percent float8, duration_ms int, guard_condition varchar(30),
            guard_level varchar(10), price_gap_pct float8, error_message text, created_at timestamptz,
            updated_at timestamptz)
        ON CONFLICT (id) DO NOTHING
        """)

    static func write(_ batch: Batch, database: PostgresConnection) throws(WriteError) -> [UInt8] {
        let ids = batch.events.map { $0.id ?? "" }
        let users = postgresArray(batch.events.map(\.userID.uuid))
        try WriteEndpoints.requireUsers(users, batch: ReconciliationEventInput.batchKey, database: database)
        if let position = try database.write(foreignID, [postgresArray(ids), users]).int(0, 0) {
            throw .rejected(.conflict("events[\(position - 1)].id: already names another user's event"))
        }
        var rows = JSONWriter(capacity: 512 * batch.events.count)
        rows.array { rows in
            for event in batch.events { event.write(to: &rows) }
        }
        _ = try database.write(insert, [String(decoding: rows.bytes, as: UTF8.self)])
        var json = JSONWriter(capacity: 40 * ids.count + 16)
        json.object { json in
            json.key("ids")
            json.array { json in
                for id in ids { json.string(id) }
            }
        }
        return json.bytes
    }
}

/// A Postgres array literal of values that need no quoting (UUIDs, numbers, RFC 3339 times).
func postgresArray(_ values: [String]) -> String {
    "{" + values.joined(separator: ",") + "}"
}
