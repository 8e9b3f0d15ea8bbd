import Crypto
import FoundationEssentials

/// The caller, as proven by a verified token: the user's UUID, lowercase.
public struct UserID: Hashable, Sendable, CustomStringConvertible {
    public let uuid: String

    /// Accepts the canonical 8-4-4-4-12 hex form in either case.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
            } else {
                guard byte.isHexDigit else { return nil }
            }
        }
        uuid = text.lowercased()
    }

    public var description: String { uuid }
}

/// What a verified token proves: whose it is, until when, and what it may do.
public struct VerifiedToken: Equatable, Sendable {
    /// The scope that lets a token write rows (`POST /reconciliation/events`, `POST /equity`).
    public static let writeScope = "reconciliation:write"

    public let user: UserID
    /// `exp`, seconds since the epoch.
    public let expiresAt: Double
    /// True when the space-separated `scope` claim (RFC 8693 §4.2) holds `reconciliation:write`.
    public let canWrite: Bool

    public init(user: UserID, expiresAt: Double, canWrite: Bool = false) {
        self.user = user
        self.expiresAt = expiresAt
        self.canWrite = canWrite
    }
}

/// Why a token was refused; every case is answered 401 with `WWW-Authenticate: Bearer`.
public enum AuthenticationError: Error, Equatable, Sendable {
    case missingHeader
    case notBearer
    case malformedToken
    case unsupportedAlgorithm(String)
    case badSignature
    case invalidClaims(String)
    case expired
    case notYetValid
    /// The token's `kid` names no configured key.
    case unknownKey

    public var message: String {
        switch self {
        case .missingHeader: "missing Authorization header"
        case .notBearer: "Authorization must use the Bearer scheme"
        case .malformedToken: "malformed token"
        case .unsupportedAlgorithm(let alg): "unsupported token algorithm \(alg); only HS256 is accepted"
        case .badSignature: "bad token signature"
        case .invalidClaims(let why): "invalid token claims: \(why)"
        case .expired: "token expired"
        case .notYetValid: "token not valid yet"
        case .unknownKey: "token signed with an unknown key (kid)"
        }
    }
}

/// Verifies HS256 JWTs signed with one of the service's keys (RFC 7519 with the API's rules):
/// `alg` must be HS256, the key is the one `kid` names (`JWTKeys`), the signature is checked in
/// constant time by swift-crypto, `sub` must be a UUID, `exp` is required, `nbf`/`iat` more than
/// `leeway` in the future are refused, and `aud`/`iss` must match when configured.
public struct JWTVerifier: Sendable {
    public static let leewaySeconds: Double = 30
    /// Refuse absurdly large tokens before any work (nginx caps headers as well).
    static let maximumTokenLength = 4096

    private let keys: JWTKeys
    /// `keys.keys`' secrets as swift-crypto keys, in the same order.
    private let symmetricKeys: [SymmetricKey]

    public init(keys: JWTKeys) {
        self.keys = keys
        symmetricKeys = keys.keys.map { SymmetricKey(data: Array($0.secret.utf8)) }
    }

    public init(secret: String) {
        self.init(keys: JWTKeys(secret: secret))
    }

    /// The verified token; `scope`, when present, must be a string.
    public func verify(authorization header: String?, now: Double) throws(AuthenticationError) -> VerifiedToken {
        let token = try Self.bearerToken(header)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Self.base64URLDecode(parts[0]),
              let payloadBytes = Self.base64URLDecode(parts[1]),
              let signature = Self.base64URLDecode(parts[2]) else { throw .malformedToken }

        guard let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)) else { throw .malformedToken }
        guard header.alg == "HS256" else { throw .unsupportedAlgorithm(header.alg) }
        let chosen = try keys.key(for: header.kid)
        let key = symmetricKeys[keys.keys.firstIndex(of: chosen)!]

        let signed = token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Array(signed), using: key) else {
            throw .badSignature
        }

        let claims: Claims
        do {
            claims = try JSONDecoder().decode(Claims.self, from: Data(payloadBytes))
        } catch {
            throw .invalidClaims("sub must be a string, exp/nbf/iat numbers, scope and iss strings, aud a string or strings, exp present")
        }
        if let audience = keys.audience, !(claims.aud?.values.contains(audience) ?? false) {
            throw .invalidClaims("aud must name \(audience)")
        }
        if let issuer = keys.issuer, claims.iss != issuer {
            throw .invalidClaims("iss must be \(issuer)")
        }
        guard let user = UserID(claims.sub) else { throw .invalidClaims("sub must be a UUID") }
        guard now < claims.exp else { throw .expired }
        if let nbf = claims.nbf, nbf > now + Self.leewaySeconds { throw .notYetValid }
        if let iat = claims.iat, iat > now + Self.leewaySeconds { throw .notYetValid }
        let canWrite = claims.scope?.split(separator: " ").contains { $0 == VerifiedToken.writeScope } ?? false
        return VerifiedToken(user: user, expiresAt: claims.exp, canWrite: canWrite)
    }

    /// The token after a case-insensitive `Bearer` and whitespace.
    static func bearerToken(_ header: String?) throws(AuthenticationError) -> Substring {
        guard let header, !header.isEmpty else { throw .missingHeader }
        let trimmed = header.drop { $0 == " " }
        guard trimmed.count > 7, trimmed.prefix(6).lowercased() == "bearer",
              trimmed.dropFirst(6).first == " " else { throw .notBearer }
        var token = trimmed.dropFirst(7).drop { $0 == " " }
        while token.last == " " { token = token.dropLast() }
        guard !token.isEmpty, token.utf8.count <= maximumTokenLength, !token.contains(" ") else { throw .malformedToken }
        return token
    }

    /// Unpadded base64url (RFC 7515 §2) of `bytes`.
    static func base64URLEncode(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { character -> Character? in
            switch character {
            case "+": "-"
            case "/": "_"
            case "=": nil
            default: character
            }
        })
    }

    /// Unpadded base64url (RFC 7515 §2); `nil` for any other character or a padded form.
    static func base64URLDecode(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count % 4 != 1 else { return nil }
        var standard = ""
        standard.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "-"): standard.append("+")
            case UInt8(ascii: "_"): standard.append("/")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                standard.unicodeScalars.append(Unicode.Scalar(byte))
            default: return nil
            }
        }
        standard.append(String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4))
        return Data(base64Encoded: standard).map(Array.init)
    }

    private struct Header: Decodable {
        let alg: String
        let kid: String?
    }

    private struct Claims: Decodable {
        let sub: String
        let exp: Double
        let nbf: Double?
        let iat: Double?
        let scope: String?
        let iss: String?
        let aud: Audience?
    }

    /// RFC 7519 §4.1.3: one string or an array of them.
    private struct Audience: Decodable {
        let values: [String]

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) {
                values = [one]
            } else {
                values = try container.decode([String].self)
            }
        }
    }
}
