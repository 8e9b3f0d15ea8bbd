/// One event of `POST /reconciliation/events`, named by the `reconciliation_logs` columns and
/// validated as strictly as the schema's CHECK constraints, column types and lengths
/// (sql/migrations/001_schema.sql), plus: no unknown fields, a non-empty `symbol`, no NUL in text.
struct ReconciliationEventInput: BatchItem, Equatable {
    static let batchKey = "events"

    enum Field: String, CodingKey, CaseIterable {
        case id, user_id, signal_id, approval_id, event_type, status, mt5_position_id, symbol, direction
        case volume, entry_price, current_price, take_profit, stop_loss, matched, divergence_reason
        case slippage_pips, close_reason, closed_price, pnl_gbp, pnl_percent, duration_ms
        case guard_condition, guard_level, price_gap_pct, error_message, created_at, updated_at
    }

    static let eventTypes: Set = ["sync", "close", "guard_trigger"]
    static let statuses: Set = ["success", "partial", "failed"]
    static let directions: Set = ["buy", "sell"]
    static let guardConditions: Set = ["price_gap", "bid_ask_spread", "low_liquidity"]
    static let guardLevels: Set = ["normal", "warning", "critical"]

    /// Set by the client, or (when absent) by `ReconciliationEventsWrite` before writing.
    var id: String?
    var userID: UserID
    var signalID: String?
    var approvalID: String?
    var eventType: String
    var status: String
    var ticket: Int64?
    var symbol: String
    var direction: String?
    /// The double precision columns other than the ones named above, by column.
    var numbers: [Field: Double]
    var matched: Int?
    var divergenceReason: String?
    var closeReason: String?
    var durationMilliseconds: Int?
    var guardCondition: String?
    var guardLevel: String?
    var errorMessage: String?
    var createdAt: Timestamp?
    var updatedAt: Timestamp?

    static let numberFields: [Field] = [.volume, .entry_price, .current_price, .take_profit, .stop_loss, .slippage_pips,
                                        .closed_price, .pnl_gbp, .pnl_percent, .price_gap_pct]

    init(from decoder: any Decoder) throws {
        try KeyedDecodingContainer<Field>.refuseUnknownFields(decoder, known: Set(Field.allCases.map(\.rawValue)))
        let c = try decoder.container(keyedBy: Field.self)
        id = try c.uuid(.id)
        guard let user = try c.uuid(.user_id).flatMap(UserID.init) else {
            throw DecodingError.keyNotFound(Field.user_id, .init(codingPath: c.codingPath, debugDescription: ""))
        }
        userID = user
        signalID = try c.uuid(.signal_id)
        approvalID = try c.uuid(.approval_id)
        eventType = try c.text(.event_type, required: true, oneOf: Self.eventTypes)!
        status = try c.text(.status, required: true, oneOf: Self.statuses)!
        ticket = try c.integer(.mt5_position_id, as: Int64.self)
        symbol = try c.text(.symbol, required: true, maxCharacters: 20)!
        direction = try c.text(.direction, oneOf: Self.directions)
        numbers = [:]
        for field in Self.numberFields {
            numbers[field] = try c.number(field)
        }
        matched = try c.integer(.matched, as: Int16.self).map(Int.init)
        if let matched, !(0...2).contains(matched) { throw c.invalid(.matched, "must be 0, 1, 2 or null") }
        divergenceReason = try c.text(.divergence_reason, maxCharacters: 100)
        closeReason = try c.text(.close_reason, maxCharacters: 100)
        durationMilliseconds = try c.integer(.duration_ms, as: Int32.self).map(Int.init)
        guardCondition = try c.text(.guard_condition, oneOf: Self.guardConditions)
        guardLevel = try c.text(.guard_level, oneOf: Self.guardLevels)
        errorMessage = try c.text(.error_message)
        createdAt = try c.timestamp(.created_at)
        updatedAt = try c.timestamp(.updated_at)
        try checkRowShape(c)
    }

    /// The CHECKs that tie columns together: sync/close rows describe a position and carry no
    /// guard fields; guard rows describe a guard and carry no ticket.
    private func checkRowShape(_ c: KeyedDecodingContainer<Field>) throws {
        if eventType == "guard_trigger" {
            if guardCondition == nil { throw c.required(.guard_condition, "on guard_trigger events") }
            if guardLevel == nil { throw c.required(.guard_level, "on guard_trigger events") }
            if ticket != nil { throw c.invalid(.mt5_position_id, "must be null on guard_trigger events") }
        } else {
            if ticket == nil { throw c.required(.mt5_position_id, "on \(eventType) events") }
            if direction == nil { throw c.required(.direction, "on \(eventType) events") }
            if numbers[.volume] == nil { throw c.required(.volume, "on \(eventType) events") }
            if numbers[.entry_price] == nil { throw c.required(.entry_price, "on \(eventType) events") }
            if guardCondition != nil { throw c.invalid(.guard_condition, "must be null on \(eventType) events") }
            if guardLevel != nil { throw c.invalid(.guard_level, "must be null on \(eventType) events") }
            if numbers[.price_gap_pct] != nil { throw c.invalid(.price_gap_pct, "must be null on \(eventType) events") }
        }
    }

    /// The event as one `jsonb_to_recordset` record of `ReconciliationEventsWrite.insert`.
    func write(to json: inout JSONWriter) {
        json.object { json in
            json.field("id", id)
            json.field("user_id", userID.uuid)
            json.field("signal_id", signalID)
            json.field("approval_id", approvalID)
            json.field("event_type", eventType)
            json.field("status", status)
            json.field("mt5_position_id", ticket.map(Int.init))
            json.field("symbol", symbol)
            json.field("direction", direction)
            json.field("volume", numbers[.volume])
            json.field("entry_price", numbers[.entry_price])
            json.field("current_price", numbers[.current_price])
            json.field("take_profit", numbers[.take_profit])
            json.field("stop_loss", numbers[.stop_loss])
            json.field("matched", matched)
            json.field("divergence_reason", divergenceReason)
            json.field("slippage_pips", numbers[.slippage_pips])
            json.field("close_reason", closeReason)
            json.field("closed_price", numbers[.closed_price])
            json.field("pnl_gbp", numbers[.pnl_gbp])
            json.field("pnl_percent", numbers[.pnl_percent])
            json.field("duration_ms", durationMilliseconds)
            json.field("guard_condition", guardCondition)
            json.field("guard_level", guardLevel)
            json.field("price_gap_pct", numbers[.price_gap_pct])
            json.field("error_message", errorMessage)
            json.field("created_at", createdAt)
            json.field("updated_at", updatedAt)
        }
    }
}

extension KeyedDecodingContainer {
    func invalid(_ key: Key, _ why: String) -> DecodingError {
        DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: why)
    }

    func required(_ key: Key, _ when: String) -> DecodingError {
        invalid(key, "is required \(when)")
    }

    /// A string, or `nil` when absent or null (unless `required`); checked against `oneOf`, a
    /// length in characters (as `varchar(n)` counts) and NUL, which Postgres text cannot hold.
    func text(_ key: Key, required: Bool = false, oneOf allowed: Set<String>? = nil, maxCharacters: Int? = nil) throws -> String? {
        guard let value = try decodeIfPresent(String.self, forKey: key) else {
            if required { throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "")) }
            return nil
        }
        if let allowed, !allowed.contains(value) {
            throw invalid(key, "must be one of \(allowed.sorted().joined(separator: ", "))")
        }
        if let maxCharacters, value.unicodeScalars.count > maxCharacters {
            throw invalid(key, "must be at most \(maxCharacters) characters")
        }
        if required && value.isEmpty { throw invalid(key, "must not be empty") }
        if value.utf8.contains(0) { throw invalid(key, "must not contain NUL characters") }
        return value
    }

    /// A whole number that fits `T` (the column's type); `nil` when absent or null.
    func integer<T: FixedWidthInteger & Decodable>(_ key: Key, as type: T.Type) throws -> T? {
        do {
            return try decodeIfPresent(T.self, forKey: key)
        } catch {
            throw invalid(key, "must be an integer from \(T.min) to \(T.max)")
        }
    }

    /// A finite number (`double precision`); `nil` when absent or null.
    func number(_ key: Key) throws -> Double? {
        do {
            return try decodeIfPresent(Double.self, forKey: key)
        } catch {
            throw invalid(key, "must be a number")
        }
    }

    /// A UUID string (any case), lowercased; `nil` when absent or null.
    func uuid(_ key: Key) throws -> String? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let uuid = UserID(text) else { throw invalid(key, "must be a UUID") }
        return uuid.uuid
    }

    /// An RFC 3339 timestamp (`Timestamp(rfc3339:)`); `nil` when absent or null.
    func timestamp(_ key: Key) throws -> Timestamp? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let at = Timestamp(rfc3339: text) else { throw invalid(key, "must be an RFC 3339 timestamp with a time zone") }
        return at
    }
}
