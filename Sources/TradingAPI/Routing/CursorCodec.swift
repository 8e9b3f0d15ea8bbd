import Crypto
import FoundationEssentials

/// Where a page of the logs view ends: the last row returned, by the view's order
/// (`created_at`, then `id`, both descending).
struct LogCursor: Equatable, Sendable {
    var createdAt: Timestamp
    /// The row's id, a lowercase UUID.
    var id: String
}

/// Opaque, signed log cursors: `base64url("<created_at µs>.<id>") + "." + base64url(tag)`, the
/// tag the first 128 bits of HMAC-SHA256 over the user's UUID and the payload, under a key
/// derived from the current JWT key. A cursor is valid only for the user it was issued to: one
/// from another user, edited, or made up is refused (400), and none reveals another user's rows.
/// During a key rotation, cursors signed under any configured key are still accepted.
struct CursorCodec: Sendable {
    /// Derived from each JWT key; the first signs.
    private let keys: [SymmetricKey]

    init(keys: JWTKeys) {
        self.keys = keys.keys.map { key in
            let derived = HMAC<SHA256>.authenticationCode(for: Array("trading-api log cursor v1".utf8),
                                                          using: SymmetricKey(data: Array(key.secret.utf8)))
            return SymmetricKey(data: Array(derived))
        }
    }

    init(secret: String) {
        self.init(keys: JWTKeys(secret: secret))
    }

    func encode(_ cursor: LogCursor, for user: UserID) -> String {
        let payload = Array("\(cursor.createdAt.microseconds).\(cursor.id)".utf8)
        return JWTVerifier.base64URLEncode(payload) + "." + JWTVerifier.base64URLEncode(tag(payload, user: user, key: keys[0]))
    }

    /// `nil` unless `text` is a cursor this service issued to `user`.
    func decode(_ text: String, for user: UserID) -> LogCursor? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard text.utf8.count <= 200, parts.count == 2,
              let payload = JWTVerifier.base64URLDecode(parts[0]), let tag = JWTVerifier.base64URLDecode(parts[1]),
              tag.count == 16, keys.contains(where: { Self.constantTimeEqual(tag, self.tag(payload, user: user, key: $0)) })
        else { return nil }
        let fields = payload.split(separator: UInt8(ascii: "."), maxSplits: 1)
        guard fields.count == 2, let micros = Int64(String(decoding: fields[0], as: UTF8.self)),
              let id = UserID(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return LogCursor(createdAt: Timestamp(microseconds: micros), id: id.uuid)
    }

    private func tag(_ payload: [UInt8], user: UserID, key: SymmetricKey) -> [UInt8] {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Array(user.uuid.utf8) + [0])
        mac.update(data: payload)
        return Array(Array(mac.finalize()).prefix(16))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
