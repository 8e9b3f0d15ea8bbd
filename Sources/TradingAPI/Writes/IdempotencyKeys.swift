import Crypto
import Postgres

/// `Idempotency-Key` for the write endpoints (sql/migrations/005_idempotency_keys.sql): the first
/// answer to a writer's key is stored in the transaction that wrote the rows and replayed, with
/// nothing written, to every retry of the same request within 24 h; the same key with another
/// request (method, path or body) is 409.
struct IdempotencyKey: Equatable {
    static let retentionHours = 24

    let key: String

    /// `nil` without the header; 400 unless it is 1–255 visible ASCII characters.
    init?(header: String?) throws(APIError) {
        guard let header else { return nil }
        guard (1...255).contains(header.utf8.count), header.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw .badRequest("Idempotency-Key: must be 1 to 255 visible ASCII characters")
        }
        key = header
    }

    /// What the key's stored request is compared by.
    static func fingerprint(path: String, body: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("POST \(path)\n".utf8))
        hasher.update(data: body)
        return hasher.finalize().hexDigits
    }

    static let expire = PreparedStatement(name: "idempotency_expire", sql: """
        DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => \(retentionHours))
        """)
    static let find = PreparedStatement(name: "idempotency_find", sql: """
        SELECT request_sha256, response FROM idempotency_keys WHERE writer = $1 AND key = $2
        """)
    /// No row back: another request stored the key first (the caller rolls back and replays it).
    static let store = PreparedStatement(name: "idempotency_store", sql: """
        INSERT INTO idempotency_keys (writer, key, request_sha256, response) VALUES ($1, $2, $3, $4)
        ON CONFLICT DO NOTHING RETURNING 1
        """)

    /// The stored answer for this writer's key: its request fingerprint and body.
    func stored(writer: UserID, database: PostgresConnection) throws(WriteError) -> (fingerprint: String, body: String)? {
        _ = try database.write(Self.expire, [])
        let result = try database.write(Self.find, [writer.uuid, key])
        guard result.rowCount > 0, let fingerprint = result.string(0, 0), let body = result.string(0, 1) else { return nil }
        return (fingerprint, body)
    }

    /// False when another request stored the key first.
    func store(writer: UserID, fingerprint: String, body: [UInt8], database: PostgresConnection) throws(WriteError) -> Bool {
        try database.write(Self.store, [writer.uuid, key, fingerprint, String(decoding: body, as: UTF8.self)]).rowCount == 1
    }
}
