import Postgres

/// `POST /api/v1/equity`: `{"snapshots":[{"user_id","equity","peak_equity","recorded_at"}…]}`
/// (1–1,000, all four fields required) → 201 `{"inserted":N}`.
///
/// Snapshots have no id: a retry without an `Idempotency-Key` writes them again. A repeated
/// snapshot (same user, time and values) changes no view.
enum EquitySnapshotsWrite: WriteEndpoint {
    static let path = "equity"

    struct Snapshot: BatchItem, Equatable {
        static let batchKey = "snapshots"

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

    static func decode(_ body: [UInt8], requestID: String) throws(APIError) -> Batch {
        Batch(snapshots: try BatchDecoding.items(Snapshot.self, from: body))
    }

    static let insert = PreparedStatement(name: "write_snapshots", sql: """
        INSERT INTO equity_snapshots (user_id, equity, peak_equity, recorded_at)
        SELECT * FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::timestamptz[])
        """)

    static func write(_ batch: Batch, database: PostgresConnection) throws(WriteError) -> [UInt8] {
        let snapshots = batch.snapshots
        let users = postgresArray(snapshots.map(\.userID.uuid))
        try WriteEndpoints.requireUsers(users, batch: Snapshot.batchKey, database: database)
        _ = try database.write(insert, [
            users, postgresArray(snapshots.map { $0.equity.description }),
            postgresArray(snapshots.map { $0.peakEquity.description }), postgresArray(snapshots.map(\.recordedAt.rfc3339)),
        ])
        var json = JSONWriter(capacity: 32)
        json.object { json in json.field("inserted", snapshots.count) }
        return json.bytes
    }
}
