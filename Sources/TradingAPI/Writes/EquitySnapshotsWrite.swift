import Postgres

/// `POST /api/v1/equity`: `{"snapshots":[{"user_id","equity","peak_equity","recorded_at"}…]}`
/// (1–1,000, all four fields required) → 201 `{"inserted":N}`.
///
/// Snapshots have no id: a retry without an `Idempotency-Key` writes them again. A repeated
/// snapshot (same user, time and values) changes no view.
enum EquitySnapshotsWrite: WriteEndpoint {
    static let path = "equity"

    struct Snapshot: Decodable, Equatable {
        enum Field: String, CodingKey, CaseIterable {
            case user_id, equity, peak_equity, recorded_at
        }

        var userID: UserID
        var equity: Double
        var peakEquity: Double
        var recordedAt: Timestamp

        init(from decoder: any Decoder) throws {
            try KeyedDecodingContainer<Field>.refuseUnknownFields(decoder, known: Set(Field.allCases.map(\.rawValue)))
            let c = try decoder.container(keyedBy: Field.self)
            guard let user = try c.uuid(.user_id).flatMap(UserID.init) else {
                throw DecodingError.keyNotFound(Field.user_id, .init(codingPath: c.codingPath, debugDescription: ""))
            }
            userID = user
            guard let equity = try c.number(.equity) else { throw c.required(.equity, "on every snapshot") }
            guard let peakEquity = try c.number(.peak_equity) else { throw c.required(.peak_equity, "on every snapshot") }
            self.equity = equity
            self.peakEquity = peakEquity
            guard let at = try c.timestamp(.recorded_at) else {
                throw DecodingError.keyNotFound(Field.recorded_at, .init(codingPath: c.codingPath, debugDescription: ""))
            }
            recordedAt = at
        }
    }

    struct Batch: Equatable {
        var snapshots: [Snapshot]
    }

    private struct Body: Decodable {
        let snapshots: [Snapshot]

        init(from decoder: any Decoder) throws {
            try KeyedDecodingContainer<AnyCodingKey>.refuseUnknownFields(decoder, known: ["snapshots"])
            snapshots = try decoder.container(keyedBy: AnyCodingKey.self).decode([Snapshot].self, forKey: AnyCodingKey(stringValue: "snapshots"))
        }
    }

    static func decode(_ body: [UInt8], requestID: String) throws(APIError) -> Batch {
        let snapshots = try BatchDecoding.decode(Body.self, from: body).snapshots
        guard (1...WriteEndpoints.maximumBatchSize).contains(snapshots.count) else {
            throw .badRequest("snapshots: must hold 1 to \(WriteEndpoints.maximumBatchSize) snapshots")
        }
        return Batch(snapshots: snapshots)
    }

    /// The 1-based position of the first snapshot whose user has no `users` row, or NULL.
    static let unknownUser = PreparedStatement(name: "write_snapshots_unknown_user", sql: """
        SELECT min(u.n)::int8 FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
        WHERE NOT EXISTS (SELECT 1 FROM users WHERE users.id = u.id)
        """)

    static let insert = PreparedStatement(name: "write_snapshots", sql: """
        INSERT INTO equity_snapshots (user_id, equity, peak_equity, recorded_at)
        SELECT * FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::timestamptz[])
        """)

    static func write(_ batch: Batch, database: PostgresConnection) throws(WriteError) -> [UInt8] {
        let snapshots = batch.snapshots
        let users = postgresArray(snapshots.map(\.userID.uuid))
        if let position = try database.write(unknownUser, [users]).int(0, 0) {
            throw .rejected(.badRequest("snapshots[\(position - 1)].user_id: no such user"))
        }
        _ = try database.write(insert, [
            users, postgresArray(snapshots.map { $0.equity.description }),
            postgresArray(snapshots.map { $0.peakEquity.description }), postgresArray(snapshots.map(\.recordedAt.rfc3339)),
        ])
        var json = JSONWriter(capacity: 32)
        json.object { json in json.field("inserted", snapshots.count) }
        return json.bytes
    }
}
