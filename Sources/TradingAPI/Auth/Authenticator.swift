/// Verifies bearer tokens, remembering the ones it has verified.
///
/// A dashboard sends the same token with every request; re-verifying means two base64 decodes,
/// two JSON parses and an HMAC each time. The memo maps the exact token text (signature
/// included) to its verified claims, so only a token that was verified once can hit, and its
/// expiry is still checked on every use. At `capacity` tokens the memo is emptied and starts
/// again, so a flood of distinct tokens costs memory only up to that bound. One per worker; not
/// shared between threads.
public final class Authenticator {
    private let verifier: JWTVerifier
    private var verified: [String: VerifiedToken] = [:]
    private let capacity: Int
    /// Tokens verified in full (HMAC and JSON) so far; the rest were answered from the memo.
    private(set) var verifications = 0

    /// Tokens remembered now; never more than `capacity`.
    var rememberedCount: Int { verified.count }

    public init(verifier: JWTVerifier, capacity: Int = 4096) {
        self.verifier = verifier
        self.capacity = capacity
    }

    public func authenticate(_ authorization: String?, now: Double) throws(AuthenticationError) -> VerifiedToken {
        if let authorization, let known = verified[authorization] {
            guard now < known.expiresAt else {
                verified[authorization] = nil
                throw .expired
            }
            return known
        }
        verifications += 1
        let result = try verifier.verify(authorization: authorization, now: now)
        if let authorization {
            if verified.count >= capacity { verified.removeAll(keepingCapacity: true) }
            verified[authorization] = result
        }
        return result
    }
}
