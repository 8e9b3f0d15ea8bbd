/// The HS256 secrets tokens may be signed with, and the optional `aud`/`iss` a token must carry.
///
/// Key rotation without downtime (docs/OPERATIONS.md): the service verifies with every key and
/// picks the one a token's header names (`kid`, RFC 7515 §4.1.4); its own signatures (log
/// cursors) use `current`, the first named key. A token without `kid` is checked against the
/// unnamed key (`JWT_SECRET_KEY`) when there is one, else against `current`; a `kid` that names
/// no key is refused (`unknownKey`). With no named keys at all a `kid` is ignored, as before
/// rotation was configured.
public struct JWTKeys: Sendable {
    public struct Key: Sendable, Equatable {
        /// `nil`: the unnamed key, `JWT_SECRET_KEY`.
        public var id: String?
        public var secret: String

        public init(id: String?, secret: String) {
            self.id = id
            self.secret = secret
        }
    }

    /// Every key, named ones first in their configured order.
    public let keys: [Key]
    /// When set, a token's `aud` (a string, or an array of strings) must contain it.
    public let audience: String?
    /// When set, a token's `iss` must equal it.
    public let issuer: String?

    /// `keys` must not be empty, and no two may share an id.
    public init(_ keys: [Key], audience: String? = nil, issuer: String? = nil) {
        precondition(!keys.isEmpty, "at least one key")
        let ids = keys.compactMap(\.id)
        precondition(Set(ids).count == ids.count, "key ids are unique")
        self.keys = keys.filter { $0.id != nil } + keys.filter { $0.id == nil }
        self.audience = audience
        self.issuer = issuer
    }

    /// One unnamed key.
    public init(secret: String) {
        self.init([Key(id: nil, secret: secret)])
    }

    /// Signs what the service signs itself.
    public var current: Key { keys[0] }

    /// The key a token with header `kid` is verified with.
    func key(for kid: String?) throws(AuthenticationError) -> Key {
        guard let kid, keys.contains(where: { $0.id != nil }) else {
            return keys.first { $0.id == nil } ?? current
        }
        guard let key = keys.first(where: { $0.id == kid }) else { throw .unknownKey }
        return key
    }

    /// Reads `JWT_KEYS` or a `JWT_KEYS_FILE`'s text: `kid=secret` entries separated by
    /// whitespace or commas, `#` to the end of a line a comment. Throws a message naming the
    /// first bad entry (never its secret).
    public static func parseNamedKeys(_ text: String, minimumSecretLength: Int) throws(JWTKeysError) -> [Key] {
        var keys: [Key] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let content = line.prefix { $0 != "#" }
            for entry in content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) {
                let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let id = String(parts[0])
                guard parts.count == 2, (1...64).contains(id.utf8.count),
                      id.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") })
                else { throw .badEntry(position: keys.count + 1) }
                guard parts[1].utf8.count >= minimumSecretLength else {
                    throw .shortSecret(id: id, minimum: minimumSecretLength)
                }
                guard !keys.contains(where: { $0.id == id }) else { throw .duplicateID(id) }
                keys.append(Key(id: id, secret: String(parts[1])))
            }
        }
        return keys
    }
}

/// Why a list of named keys was refused.
public enum JWTKeysError: Error, Equatable, Sendable, CustomStringConvertible {
    case badEntry(position: Int)
    case shortSecret(id: String, minimum: Int)
    case duplicateID(String)

    public var description: String {
        switch self {
        case .badEntry(let position): "entry \(position) is not kid=secret (kid: 1-64 of A-Z a-z 0-9 - _ .)"
        case .shortSecret(let id, let minimum): "the secret of key \(id) is shorter than \(minimum) bytes"
        case .duplicateID(let id): "key id \(id) appears twice"
        }
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5a).contains(self) || (0x61...0x7a).contains(self)
    }
}
