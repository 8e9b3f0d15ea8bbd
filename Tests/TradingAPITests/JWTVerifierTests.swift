import Crypto
import FoundationEssentials
import Testing
@testable import TradingAPI

/// Builds tokens the way a client library would, including broken ones.
enum TokenFactory {
    static let secret = "test-secret-that-is-at-least-32-bytes-long"
    static let user = "3f2c8a1e-9b7d-4c6e-8a5f-1d2e3c4b5a69"
    static let now: Double = 1_800_000_000

    static func base64URL(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { character -> Character? in
            switch character {
            case "+": "-"
            case "/": "_"
            case "=": nil
            default: character
            }
        })
    }

    static func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String, secret: String = secret) -> String {
        let signingInput = base64URL(Array(header.utf8)) + "." + base64URL(Array(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return signingInput + "." + base64URL(Array(mac))
    }

    static func valid(sub: String = user, exp: Double = now + 3600) -> String {
        token(claims: #"{"sub":"\#(sub)","exp":\#(Int(exp))}"#)
    }
}

@Suite struct JWTVerifierTests {
    let verifier = JWTVerifier(secret: TokenFactory.secret)

    func verify(_ header: String?) throws(AuthenticationError) -> UserID {
        try verifier.verify(authorization: header, now: TokenFactory.now).user
    }

    @Test func acceptsValidTokenAndLowercasesSub() throws {
        let token = TokenFactory.valid(sub: TokenFactory.user.uppercased())
        #expect(try verify("Bearer \(token)").uuid == TokenFactory.user)
    }

    @Test func bearerSchemeIsCaseInsensitive() throws {
        let token = TokenFactory.valid()
        #expect(try verify("bearer \(token)").uuid == TokenFactory.user)
        #expect(try verify("BEARER  \(token)").uuid == TokenFactory.user)
    }

    @Test func writeScopeIsOneSpaceSeparatedScope() throws {
        func canWrite(_ scope: String) throws -> Bool {
            let token = TokenFactory.token(claims: #"{"sub":"\#(TokenFactory.user)","exp":\#(Int(TokenFactory.now + 60)),"scope":\#(scope)}"#)
            return try verifier.verify(authorization: "Bearer \(token)", now: TokenFactory.now).canWrite
        }
        #expect(try canWrite(#""reconciliation:write""#))
        #expect(try canWrite(#""read reconciliation:write other""#))
        #expect(try !canWrite(#""reconciliation:read""#))
        #expect(try !canWrite(#""reconciliation:writes""#))
        #expect(try !canWrite(#""""#))
        #expect(try !verifier.verify(authorization: "Bearer \(TokenFactory.valid())", now: TokenFactory.now).canWrite)
        #expect(throws: AuthenticationError.self) { try canWrite(#"["reconciliation:write"]"#) }
    }

    @Test func refusesMissingOrNonBearerHeader() {
        #expect(throws: AuthenticationError.missingHeader) { try verify(nil) }
        #expect(throws: AuthenticationError.missingHeader) { try verify("") }
        #expect(throws: AuthenticationError.notBearer) { try verify("Basic dXNlcjpwYXNz") }
        #expect(throws: AuthenticationError.notBearer) { try verify("Bearer") }
    }

    @Test func refusesOtherAlgorithms() {
        for alg in ["none", "HS512", "RS256", "hs256"] {
            let token = TokenFactory.token(header: #"{"alg":"\#(alg)"}"#, claims: #"{"sub":"\#(TokenFactory.user)","exp":1900000000}"#)
            #expect(throws: AuthenticationError.unsupportedAlgorithm(alg)) { try verify("Bearer \(token)") }
        }
        let unsigned = TokenFactory.base64URL(Array(#"{"alg":"none"}"#.utf8)) + "." + TokenFactory.base64URL(Array(#"{"sub":"x","exp":1}"#.utf8)) + "."
        #expect(throws: AuthenticationError.malformedToken) { try verify("Bearer \(unsigned)") }
    }

    @Test func refusesBadSignature() {
        let token = TokenFactory.token(claims: #"{"sub":"\#(TokenFactory.user)","exp":1900000000}"#, secret: "another-secret-that-is-also-32-bytes-long")
        #expect(throws: AuthenticationError.badSignature) { try verify("Bearer \(token)") }
        var tampered = TokenFactory.valid()
        tampered.removeLast()
        tampered.append(tampered.last == "A" ? "B" : "A")
        #expect(throws: AuthenticationError.badSignature) { try verify("Bearer \(tampered)") }
    }

    @Test func refusesMalformedTokens() {
        for token in ["abc", "a.b", "a.b.c.d", "!!!.???.***", String(repeating: "A", count: 5000), "a b.c.d"] {
            #expect(throws: (any Error).self) { try verify("Bearer \(token)") }
        }
    }

    @Test func requiresUUIDSubjectAndNumericExpiry() {
        let cases = [
            #"{"sub":"not-a-uuid","exp":1900000000}"#,
            #"{"exp":1900000000}"#,
            #"{"sub":"\#(TokenFactory.user)"}"#,
            #"{"sub":"\#(TokenFactory.user)","exp":"1900000000"}"#,
            #"{"sub":12,"exp":1900000000}"#,
            #"{"sub":"\#(TokenFactory.user)","exp":1900000000,"nbf":"soon"}"#,
            "[]",
        ]
        for claims in cases {
            #expect(throws: (any Error).self, "\(claims)") { try verify("Bearer \(TokenFactory.token(claims: claims))") }
        }
    }

    @Test func checksExpiryAndFutureClaimsWithLeeway() throws {
        let now = Int(TokenFactory.now)
        func claims(_ extra: String) -> String { #"{"sub":"\#(TokenFactory.user)","exp":\#(now + 60)\#(extra)}"# }
        #expect(throws: AuthenticationError.expired) {
            try verify("Bearer \(TokenFactory.valid(exp: TokenFactory.now - 1))")
        }
        #expect(throws: AuthenticationError.expired) { try verify("Bearer \(TokenFactory.valid(exp: TokenFactory.now))") }
        #expect(throws: AuthenticationError.notYetValid) { try verify("Bearer \(TokenFactory.token(claims: claims(#","nbf":\#(now + 31)"#)))") }
        #expect(throws: AuthenticationError.notYetValid) { try verify("Bearer \(TokenFactory.token(claims: claims(#","iat":\#(now + 31)"#)))") }
        #expect(try verify("Bearer \(TokenFactory.token(claims: claims(#","nbf":\#(now + 29),"iat":\#(now + 29)"#)))").uuid == TokenFactory.user)
    }

    @Test func authenticatorRemembersTokensButStillChecksExpiry() throws {
        let authenticator = Authenticator(verifier: verifier)
        let header = "Bearer \(TokenFactory.valid(exp: TokenFactory.now + 10))"
        #expect(try authenticator.authenticate(header, now: TokenFactory.now).user.uuid == TokenFactory.user)
        #expect(try authenticator.authenticate(header, now: TokenFactory.now + 5).user.uuid == TokenFactory.user)
        #expect(throws: AuthenticationError.expired) { try authenticator.authenticate(header, now: TokenFactory.now + 10) }
    }

    @Test func aRememberedTokenIsNotVerifiedAgainUntilItExpires() throws {
        let authenticator = Authenticator(verifier: verifier)
        let header = "Bearer \(TokenFactory.valid(exp: TokenFactory.now + 60))"
        for offset in 0..<5 {
            #expect(try authenticator.authenticate(header, now: TokenFactory.now + Double(offset)).user.uuid == TokenFactory.user)
        }
        #expect(authenticator.verifications == 1, "HMAC and JSON work once for five uses")
    }

    @Test func aChangedOrForgedTokenNeverHitsTheMemo() throws {
        let authenticator = Authenticator(verifier: verifier)
        let token = TokenFactory.valid()
        #expect(try authenticator.authenticate("Bearer \(token)", now: TokenFactory.now).user.uuid == TokenFactory.user)
        let parts = token.split(separator: ".").map(String.init)
        let otherUser = "00000000-0000-4000-8000-000000000002"
        let forgedClaims = TokenFactory.base64URL(Array(#"{"sub":"\#(otherUser)","exp":\#(Int(TokenFactory.now) + 3600)}"#.utf8))
        let changed = [
            parts[0] + "." + parts[1] + "." + String(parts[2].dropLast()) + (parts[2].last == "A" ? "B" : "A"),  // signature
            parts[0] + "." + forgedClaims + "." + parts[2],                                                        // claims
            TokenFactory.token(claims: #"{"sub":"\#(otherUser)","exp":\#(Int(TokenFactory.now) + 3600)}"#, secret: "another-secret-that-is-at-least-32-bytes"),
        ]
        for token in changed {
            #expect(throws: AuthenticationError.self) { try authenticator.authenticate("Bearer \(token)", now: TokenFactory.now) }
        }
        #expect(authenticator.verifications == 4, "each changed token was verified, and refused")
    }

    @Test func theMemoIsBounded() throws {
        let authenticator = Authenticator(verifier: verifier, capacity: 8)
        for index in 0..<50 {
            let user = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - String(index).count) + String(index)
            _ = try authenticator.authenticate("Bearer \(TokenFactory.valid(sub: user))", now: TokenFactory.now)
            #expect(authenticator.rememberedCount <= 8)
        }
    }
}
