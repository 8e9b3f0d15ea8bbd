import FoundationEssentials

/// Why the service refuses to start; printed as is.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    case missing(variable: String, hint: String)
    case invalid(variable: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .missing(let variable, let hint): "\(variable) is not set: \(hint)"
        case .invalid(let variable, let value, let expected): "\(variable)=\(value) is invalid: expected \(expected)"
        }
    }
}

/// Every setting of the service, read from the environment and checked at start-up.
public struct ServiceConfiguration: Sendable {
    public var databaseURL: String
    /// `DATABASE_READ_URL`: a streaming replica of `DATABASE_URL` to read views from when it has
    /// replayed far enough (`ReadReplica`); `nil`: the primary only.
    public var databaseReadURL: String?
    /// `REPLICA_MAX_LAG_MS`: a replica lagging more than this is not read from.
    public var replicaMaximumLagMilliseconds: Int
    public var memcachedServers: String
    /// `JWT_KEYS` and `JWT_KEYS_FILE` (named keys, the first signs), `JWT_SECRET_KEY` (the unnamed
    /// key), `JWT_AUDIENCE`, `JWT_ISSUER`.
    public var jwtKeys: JWTKeys
    public var workers: Int
    public var maxRequests: Int
    /// Request loops (threads) per worker, `FCGI_LOOPS`: each has its own Postgres connection and
    /// memcached client; they share the worker's kept-alive FastCGI connections
    /// (docs/design/fastcgi-keepalive.md).
    public var requestLoops: Int
    public var cacheTTLSeconds: Int
    public var fastCGISocket: String
    public var fastCGISocketGroup: String?
    /// `FCGI_WEB_SERVER_ADDRS`: the IPv4 addresses of the web servers that may connect to a TCP
    /// `FCGI_SOCKET`, comma-separated (`10.0.0.10,10.0.0.11`); `nil` when unset. libfcgi reads the
    /// variable itself in each worker and closes any other peer's connection as it accepts it
    /// (its `ClientAddrOK`); this only checks the list, and requires one when the socket listens
    /// on more than loopback (docs/SECURITY.md: nothing untrusted may reach libfcgi).
    public var webServerAddresses: [String]?
    public var logLevel: String
    public var databaseConnectTimeoutSeconds: Int
    public var statementTimeoutMilliseconds: Int
    public var memcachedTimeoutMilliseconds: Int
    /// `SLOW_REQUEST_MS`: a request slower than this is logged with its phase timings (the slow
    /// log); 0 turns it off.
    public var slowRequestMilliseconds: Int
    /// `NCHAN_PUBLISH_SOCKET`: nginx's nchan publisher (the live stream); `nil`: no stream.
    public var nchanPublishSocket: String?

    public static let minimumSecretLength = 32

    /// `readFile` reads `JWT_KEYS_FILE` (each worker reads it when it starts, so a reload picks up
    /// a rotated key); `nil` when it cannot.
    public static func fromEnvironment(
        _ environment: [String: String],
        readFile: (String) -> String? = { path in FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } }
    ) throws(ConfigurationError) -> ServiceConfiguration {
        let reader = EnvironmentReader(environment: environment)
        guard let databaseURL = reader.string("DATABASE_URL") else {
            throw .missing(variable: "DATABASE_URL", hint: "a libpq URI such as postgresql://user:pass@127.0.0.1:5432/trading")
        }
        let jwtKeys = try Self.jwtKeys(reader, readFile: readFile)
        let logLevel = reader.string("LOG_LEVEL") ?? "info"
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(logLevel) else {
            throw .invalid(variable: "LOG_LEVEL", value: logLevel, expected: levels.joined(separator: "|"))
        }
        let fastCGISocket = reader.string("FCGI_SOCKET") ?? "/run/trading-api/fcgi.sock"
        return ServiceConfiguration(
            databaseURL: databaseURL,
            databaseReadURL: reader.string("DATABASE_READ_URL"),
            replicaMaximumLagMilliseconds: try reader.integer("REPLICA_MAX_LAG_MS", in: 0...3_600_000, default: 1000),
            memcachedServers: reader.string("MEMCACHED_SERVERS") ?? "127.0.0.1:11211",
            jwtKeys: jwtKeys,
            workers: try reader.integer("WORKERS", in: 1...256, default: 4),
            maxRequests: try reader.integer("MAX_REQUESTS", in: 0...100_000_000, default: 1_000_000),
            requestLoops: try reader.integer("FCGI_LOOPS", in: 1...64, default: 2),
            cacheTTLSeconds: try reader.integer("CACHE_TTL_SECONDS", in: 0...86_400, default: 300),
            fastCGISocket: fastCGISocket,
            fastCGISocketGroup: reader.string("FCGI_SOCKET_GROUP"),
            webServerAddresses: try Self.webServerAddresses(reader, socket: fastCGISocket),
            logLevel: logLevel,
            databaseConnectTimeoutSeconds: try reader.integer("PG_CONNECT_TIMEOUT_SECONDS", in: 1...60, default: 2),
            statementTimeoutMilliseconds: try reader.integer("PG_STATEMENT_TIMEOUT_MS", in: 10...600_000, default: 2000),
            memcachedTimeoutMilliseconds: try reader.integer("MEMCACHED_TIMEOUT_MS", in: 1...10_000, default: 20),
            slowRequestMilliseconds: try reader.integer("SLOW_REQUEST_MS", in: 0...600_000, default: 1000),
            nchanPublishSocket: reader.string("NCHAN_PUBLISH_SOCKET"))
    }
}

extension ServiceConfiguration {
    /// `FCGI_WEB_SERVER_ADDRS`, each entry an IPv4 address as libfcgi compares it (`inet_addr` of
    /// the entry against the peer); required for a TCP `FCGI_SOCKET` whose host is not loopback.
    private static func webServerAddresses(_ reader: EnvironmentReader, socket: String) throws(ConfigurationError) -> [String]? {
        let variable = "FCGI_WEB_SERVER_ADDRS"
        guard let text = reader.string(variable) else {
            if let host = tcpHost(of: socket), !isLoopback(host) {
                throw .missing(variable: variable, hint: "FCGI_SOCKET=\(socket) listens beyond loopback: list the web servers' IPv4 addresses allowed to connect (comma-separated)")
            }
            return nil
        }
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard entries.allSatisfy(isIPv4Address) else {
            throw .invalid(variable: variable, value: text, expected: "IPv4 addresses separated by commas, e.g. 10.0.0.10,10.0.0.11")
        }
        return entries
    }

    /// The host of a `host:port` / `:port` socket address (`""` for all interfaces); `nil` for a
    /// unix socket path (anything with a `/`).
    private static func tcpHost(of socket: String) -> String? {
        guard !socket.contains("/"), let colon = socket.lastIndex(of: ":") else { return nil }
        return String(socket[..<colon])
    }

    private static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || (isIPv4Address(host) && host.hasPrefix("127."))
    }

    /// Four decimal octets 0–255, no leading zeros, nothing else.
    private static func isIPv4Address(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { octet in
            (1...3).contains(octet.count) && octet.allSatisfy { ("0"..."9").contains($0) }
                && (octet.count == 1 || octet.first != "0") && Int(octet)! <= 255
        }
    }

    private static func jwtKeys(_ reader: EnvironmentReader, readFile: (String) -> String?) throws(ConfigurationError) -> JWTKeys {
        var keys: [JWTKeys.Key] = []
        if let inline = reader.string("JWT_KEYS") {
            keys += try namedKeys(inline, variable: "JWT_KEYS", value: "(\(inline.utf8.count) bytes)")
        }
        if let path = reader.string("JWT_KEYS_FILE") {
            guard let text = readFile(path) else {
                throw .invalid(variable: "JWT_KEYS_FILE", value: path, expected: "a file this process can read")
            }
            keys += try namedKeys(text, variable: "JWT_KEYS_FILE", value: path)
        }
        let ids = keys.compactMap(\.id)
        if let repeated = ids.first(where: { id in ids.filter { $0 == id }.count > 1 }) {
            throw .invalid(variable: "JWT_KEYS_FILE", value: repeated, expected: "key ids not already in JWT_KEYS")
        }
        if let secret = reader.string("JWT_SECRET_KEY") {
            guard secret.utf8.count >= minimumSecretLength else {
                throw .invalid(variable: "JWT_SECRET_KEY", value: "(\(secret.utf8.count) bytes)",
                               expected: "at least \(minimumSecretLength) bytes")
            }
            keys.append(JWTKeys.Key(id: nil, secret: secret))
        }
        guard !keys.isEmpty else {
            throw .missing(variable: "JWT_SECRET_KEY",
                           hint: "the HS256 secret, at least \(minimumSecretLength) bytes (or named keys in JWT_KEYS / JWT_KEYS_FILE)")
        }
        return JWTKeys(keys, audience: reader.string("JWT_AUDIENCE"), issuer: reader.string("JWT_ISSUER"))
    }

    private static func namedKeys(_ text: String, variable: String, value: String) throws(ConfigurationError) -> [JWTKeys.Key] {
        do {
            return try JWTKeys.parseNamedKeys(text, minimumSecretLength: minimumSecretLength)
        } catch {
            throw .invalid(variable: variable, value: value, expected: "kid=secret entries: \(error)")
        }
    }
}

private struct EnvironmentReader {
    let environment: [String: String]

    func string(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    func integer(_ name: String, in range: ClosedRange<Int>, default defaultValue: Int) throws(ConfigurationError) -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = QueryParameters.plainInteger(text), range.contains(value) else {
            throw .invalid(variable: name, value: text, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
