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
        #expect(configuration.databaseReadURL == nil && configuration.replicaMaximumLagMilliseconds == 1000)
    }

    @Test func readReplicaSettings() throws {
        var environment = base
        environment["DATABASE_READ_URL"] = "postgresql://replica/trading"
        environment["REPLICA_MAX_LAG_MS"] = "250"
        let configuration = try ServiceConfiguration.fromEnvironment(environment)
        #expect(configuration.databaseReadURL == "postgresql://replica/trading" && configuration.replicaMaximumLagMilliseconds == 250)
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
        for (name, value) in [("WORKERS", "0"), ("WORKERS", "many"), ("CACHE_TTL_SECONDS", "-1"), ("MAX_REQUESTS", "1e3"), ("FCGI_LOOPS", "0"), ("FCGI_LOOPS", "65"), ("REPLICA_MAX_LAG_MS", "-5")] {
            var environment = base
            environment[name] = value
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") { try ServiceConfiguration.fromEnvironment(environment) }
        }
    }

    /// FCGI_WEB_SERVER_ADDRS: libfcgi's allow-list for a TCP socket (worker hosts, issue 13).
    @Test func webServerAddressesAreCheckedAndRequiredBeyondLoopback() throws {
        func configuration(_ socket: String, _ addresses: String? = nil) throws(ConfigurationError) -> ServiceConfiguration {
            var environment = base
            environment["FCGI_SOCKET"] = socket
            environment["FCGI_WEB_SERVER_ADDRS"] = addresses
            return try ServiceConfiguration.fromEnvironment(environment)
        }
        // A unix socket or loopback needs no list.
        #expect(try configuration("/run/trading-api/fcgi.sock").webServerAddresses == nil)
        #expect(try configuration("127.0.0.1:9000").webServerAddresses == nil)
        #expect(try configuration("localhost:9000").webServerAddresses == nil)
        // Any other host, or all interfaces, needs one.
        for socket in ["10.0.0.21:9000", ":9000", "0.0.0.0:9000", "worker1.example:9000"] {
            #expect(throws: ConfigurationError.self, "\(socket)") { try configuration(socket) }
        }
        #expect(try configuration(":9000", "10.0.0.10,10.0.0.11").webServerAddresses == ["10.0.0.10", "10.0.0.11"])
        #expect(try configuration("127.0.0.1:9000", "127.0.0.1").webServerAddresses == ["127.0.0.1"])
        // Only what libfcgi compares exactly: dotted IPv4, no spaces, names, CIDRs or empty entries.
        for list in ["10.0.0.10, 10.0.0.11", "10.0.0.256", "10.0.0", "010.0.0.1", "web1", "10.0.0.0/24",
                     "10.0.0.10,", ",10.0.0.10", "::1", "1.2.3.4.5"] {
            #expect(throws: ConfigurationError.self, "\(list)") { try configuration(":9000", list) }
        }
    }
}
