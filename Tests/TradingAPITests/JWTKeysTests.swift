import Testing
@testable import TradingAPI

/// Key rotation: `kid` picks the key, the unnamed key verifies tokens without one, `aud`/`iss`
/// are checked when configured, and the configuration reads named keys from JWT_KEYS and a file.
@Suite struct JWTKeysTests {
    static let old = String(repeating: "o", count: 32)
    static let new = String(repeating: "n", count: 32)
    static let claims = #"{"sub":"\#(TokenFactory.user)","exp":\#(Int(TokenFactory.now + 60))}"#

    static func token(kid: String?, secret: String, claims: String = claims) -> String {
        let header = kid.map { #"{"alg":"HS256","typ":"JWT","kid":"\#($0)"}"# } ?? #"{"alg":"HS256","typ":"JWT"}"#
        return "Bearer " + TokenFactory.token(header: header, claims: claims, secret: secret)
    }

    func verify(_ keys: JWTKeys, _ header: String) throws(AuthenticationError) -> UserID {
        try JWTVerifier(keys: keys).verify(authorization: header, now: TokenFactory.now).user
    }

    @Test func theKeyIdPicksTheKeyDuringARotation() throws {
        let keys = JWTKeys([.init(id: "new", secret: Self.new), .init(id: "old", secret: Self.old)])
        #expect(keys.current.id == "new")
        #expect(try verify(keys, Self.token(kid: "old", secret: Self.old)).uuid == TokenFactory.user)
        #expect(try verify(keys, Self.token(kid: "new", secret: Self.new)).uuid == TokenFactory.user)
        #expect(throws: AuthenticationError.badSignature) { try verify(keys, Self.token(kid: "new", secret: Self.old)) }
        #expect(throws: AuthenticationError.unknownKey) { try verify(keys, Self.token(kid: "retired", secret: Self.old)) }
        // Without kid: the current (first) key, as there is no unnamed one.
        #expect(try verify(keys, Self.token(kid: nil, secret: Self.new)).uuid == TokenFactory.user)
        #expect(throws: AuthenticationError.badSignature) { try verify(keys, Self.token(kid: nil, secret: Self.old)) }
    }

    @Test func tokensWithoutKidUseTheUnnamedKeyAndKidIsIgnoredWithoutNamedKeys() throws {
        let both = JWTKeys([.init(id: nil, secret: Self.old), .init(id: "new", secret: Self.new)])
        #expect(both.current.id == "new")  // named keys sign
        #expect(try verify(both, Self.token(kid: nil, secret: Self.old)).uuid == TokenFactory.user)
        let unnamed = JWTKeys(secret: Self.old)
        #expect(try verify(unnamed, Self.token(kid: "anything", secret: Self.old)).uuid == TokenFactory.user)
    }

    @Test func audienceAndIssuerAreCheckedWhenConfigured() throws {
        let keys = JWTKeys([.init(id: nil, secret: Self.old)], audience: "trading-api", issuer: "https://auth.example")
        func claims(_ extra: String) -> String {
            #"{"sub":"\#(TokenFactory.user)","exp":\#(Int(TokenFactory.now + 60))\#(extra)}"#
        }
        #expect(try verify(keys, Self.token(kid: nil, secret: Self.old,
                                            claims: claims(#","aud":"trading-api","iss":"https://auth.example""#))).uuid == TokenFactory.user)
        #expect(try verify(keys, Self.token(kid: nil, secret: Self.old,
                                            claims: claims(#","aud":["other","trading-api"],"iss":"https://auth.example""#))).uuid == TokenFactory.user)
        #expect(throws: AuthenticationError.invalidClaims("aud must name trading-api")) {
            try verify(keys, Self.token(kid: nil, secret: Self.old, claims: claims(#","aud":"other","iss":"https://auth.example""#)))
        }
        #expect(throws: AuthenticationError.invalidClaims("aud must name trading-api")) {
            try verify(keys, Self.token(kid: nil, secret: Self.old, claims: claims(#","iss":"https://auth.example""#)))
        }
        #expect(throws: AuthenticationError.invalidClaims("iss must be https://auth.example")) {
            try verify(keys, Self.token(kid: nil, secret: Self.old, claims: claims(#","aud":"trading-api","iss":"https://evil.example""#)))
        }
    }

    @Test func namedKeysParseFromTextWithComments() throws {
        let keys = try JWTKeys.parseNamedKeys("# rotation 2026-12\nnew=\(Self.new)  # signs\nold=\(Self.old),\n",
                                              minimumSecretLength: 32)
        #expect(keys == [.init(id: "new", secret: Self.new), .init(id: "old", secret: Self.old)])
        #expect(try JWTKeys.parseNamedKeys("", minimumSecretLength: 32).isEmpty)
        #expect(throws: JWTKeysError.badEntry(position: 1)) { try JWTKeys.parseNamedKeys("just-a-secret", minimumSecretLength: 32) }
        #expect(throws: JWTKeysError.badEntry(position: 2)) { try JWTKeys.parseNamedKeys("a=\(Self.old) b/c=\(Self.new)", minimumSecretLength: 32) }
        #expect(throws: JWTKeysError.shortSecret(id: "a", minimum: 32)) { try JWTKeys.parseNamedKeys("a=short", minimumSecretLength: 32) }
        #expect(throws: JWTKeysError.duplicateID("a")) { try JWTKeys.parseNamedKeys("a=\(Self.old) a=\(Self.new)", minimumSecretLength: 32) }
    }

    @Test func theConfigurationReadsJWTKeysAndTheKeysFile() throws {
        let environment = ["DATABASE_URL": "x", "JWT_KEYS": "new=\(Self.new)", "JWT_KEYS_FILE": "/etc/keys",
                           "JWT_SECRET_KEY": Self.old, "JWT_AUDIENCE": "trading-api"]
        let configuration = try ServiceConfiguration.fromEnvironment(environment) { path in
            path == "/etc/keys" ? "old=\(Self.old)\n" : nil
        }
        #expect(configuration.jwtKeys.keys.map(\.id) == ["new", "old", nil])
        #expect(configuration.jwtKeys.audience == "trading-api")
        #expect(configuration.jwtKeys.issuer == nil)

        #expect(throws: ConfigurationError.invalid(variable: "JWT_KEYS_FILE", value: "/etc/keys", expected: "a file this process can read")) {
            try ServiceConfiguration.fromEnvironment(environment) { _ in nil }
        }
        #expect(throws: ConfigurationError.invalid(variable: "JWT_KEYS_FILE", value: "new", expected: "key ids not already in JWT_KEYS")) {
            try ServiceConfiguration.fromEnvironment(environment) { _ in "new=\(Self.old)" }
        }
        // Named keys alone are enough.
        let named = try ServiceConfiguration.fromEnvironment(["DATABASE_URL": "x", "JWT_KEYS": "k1=\(Self.new)"])
        #expect(named.jwtKeys.current == .init(id: "k1", secret: Self.new))
        // A broken file names the entry, never the secret.
        do {
            _ = try ServiceConfiguration.fromEnvironment(["DATABASE_URL": "x", "JWT_KEYS_FILE": "/k"]) { _ in "k=\(Self.new) oops" }
            Issue.record("accepted a broken keys file")
        } catch {
            #expect("\(error)".contains("entry 2"))
            #expect(!"\(error)".contains(Self.new))
        }
    }

    @Test func cursorsSignedUnderAnyConfiguredKeyAreAccepted() throws {
        let user = try #require(UserID(TokenFactory.user))
        let cursor = LogCursor(createdAt: Timestamp(microseconds: 5), id: TokenFactory.user)
        let before = CursorCodec(keys: JWTKeys([.init(id: "old", secret: Self.old)]))
        let during = CursorCodec(keys: JWTKeys([.init(id: "new", secret: Self.new), .init(id: "old", secret: Self.old)]))
        let after = CursorCodec(keys: JWTKeys([.init(id: "new", secret: Self.new)]))
        let issued = before.encode(cursor, for: user)
        #expect(during.decode(issued, for: user) == cursor)
        #expect(after.decode(issued, for: user) == nil)
        #expect(after.decode(during.encode(cursor, for: user), for: user) == cursor)
    }
}
