import Testing
@testable import TradingAPI

@Suite struct ConfigurationTests {
    let base = ["DATABASE_URL": "postgresql://localhost/trading", "JWT_SECRET_KEY": String(repeating: "k", count: 32)]

    @Test func defaults() throws {
        let configuration = try ServiceConfiguration.fromEnvironment(base)
        #expect(configuration.cacheTTLSeconds == 300)
        #expect(configuration.memcachedServers == "127.0.0.1:11211")
        #expect(configuration.workers == 4)
        #expect(configuration.requestLoops == 2)
    }

    @Test func refusesMissingOrShortSecret() {
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration.fromEnvironment(["DATABASE_URL": "x"]) }
        var short = base
        short["JWT_SECRET_KEY"] = String(repeating: "k", count: 31)
        #expect(throws: ConfigurationError.invalid(variable: "JWT_SECRET_KEY", value: "(31 bytes)", expected: "at least 32 bytes")) {
            try ServiceConfiguration.fromEnvironment(short)
        }
    }

    @Test func refusesBadNumbers() {
        for (name, value) in [("WORKERS", "0"), ("WORKERS", "many"), ("CACHE_TTL_SECONDS", "-1"), ("MAX_REQUESTS", "1e3"), ("FCGI_LOOPS", "0"), ("FCGI_LOOPS", "65")] {
            var environment = base
            environment[name] = value
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") { try ServiceConfiguration.fromEnvironment(environment) }
        }
    }
}
