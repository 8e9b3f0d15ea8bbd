#if canImport(Glibc)
import Glibc
#endif
import CLibPQ

/// One libpq connection, owned by a single worker for its life.
///
/// Connects lazily, prepares each `PreparedStatement` once per server session, and reconnects on
/// the next call after the connection is lost. A statement that fails because a previously good
/// connection broke is retried once on a fresh connection (reads only: callers must not pass
/// statements with side effects that cannot run twice). After a failed connect attempt further
/// attempts are skipped for `reconnectInterval`, so a down database costs a request microseconds,
/// not a connect timeout each.
public final class PostgresConnection {
    public struct Configuration: Sendable {
        /// A libpq connection string or URI.
        public var url: String
        public var connectTimeoutSeconds: Int
        public var statementTimeoutMilliseconds: Int
        public var applicationName: String
        /// How long to answer "unavailable" without trying again after a failed connect.
        public var reconnectIntervalMilliseconds: Int
        /// libpq's `tcp_user_timeout`: a call whose data the server has not acknowledged for this
        /// long fails (a server on another host whose cable is cut), instead of waiting for TCP's
        /// own minutes; `nil`: the kernel's default.
        public var tcpUserTimeoutMilliseconds: Int?

        public init(url: String, connectTimeoutSeconds: Int = 2, statementTimeoutMilliseconds: Int = 2000,
                    applicationName: String = "swift-worker", reconnectIntervalMilliseconds: Int = 250,
                    tcpUserTimeoutMilliseconds: Int? = nil) {
            self.tcpUserTimeoutMilliseconds = tcpUserTimeoutMilliseconds
            self.url = url
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
            self.applicationName = applicationName
            self.reconnectIntervalMilliseconds = reconnectIntervalMilliseconds
        }
    }

    public let configuration: Configuration
    private var connection: OpaquePointer?
    private var prepared: Set<String> = []
    private var nextConnectAttempt: UInt64 = 0
    /// Inside `transaction`: a lost connection is never retried (it lost the transaction too).
    private var inTransaction = false
    /// Time spent in `execute` since the connection object was made, connecting included, in
    /// microseconds of the monotonic clock: read it before and after a piece of work for its
    /// database time.
    public private(set) var executionMicroseconds: UInt64 = 0
    /// How many sessions this object has opened: a change means a new session (after a lost
    /// connection, perhaps to a restarted server), which may see an older database than the last.
    public private(set) var sessions: UInt64 = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    deinit { disconnect() }

    /// True while a connection is established and healthy as far as libpq knows.
    public var isConnected: Bool {
        guard let connection else { return false }
        return PQstatus(connection) == CONNECTION_OK
    }

    /// Runs a prepared statement with text parameters (`nil` is SQL NULL).
    public func execute(_ statement: PreparedStatement, _ parameters: [String?]) throws(PostgresError) -> PostgresResult {
        let started = monotonicMicroseconds()
        defer { executionMicroseconds += monotonicMicroseconds() - started }
        let wasConnected = isConnected
        do {
            return try executeOnce(statement, parameters)
        } catch .connectionLost where wasConnected && !inTransaction {
            // The server restarted or dropped us since the last request: one fresh try.
            return try executeOnce(statement, parameters)
        }
    }

    /// Runs `body` in one transaction: `BEGIN`, then `COMMIT` when it returns, `ROLLBACK` when it
    /// throws (the error is rethrown). Statements inside are never retried on a new connection.
    /// A lost connection rolls back on the server; the error says so (`.connectionLost`), and
    /// whether the commit happened is then unknown, as with any database client.
    public func transaction<Result, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(TransactionError<Failure>) -> Result {
        do {
            let wasConnected = isConnected
            do {
                try command("BEGIN")
            } catch .connectionLost where wasConnected {
                try command("BEGIN")  // the server dropped an idle connection: nothing was lost yet
            }
        } catch {
            throw .database(error)
        }
        inTransaction = true
        defer { inTransaction = false }
        let result: Result
        do {
            result = try body()
        } catch {
            try? command("ROLLBACK")
            throw .body(error)
        }
        do {
            try command("COMMIT")
        } catch {
            throw .database(error)
        }
        return result
    }

    /// Runs a fixed command without parameters (transaction control).
    private func command(_ sql: StaticString) throws(PostgresError) {
        try connect()
        guard let connection else { throw .connectionFailed(message: "not connected") }
        let result = PQexec(connection, sql.description)
        try check(result, statement: PreparedStatement(name: sql.description, sql: sql.description), expecting: PGRES_COMMAND_OK)
        PQclear(result)
    }

    /// Connects now if not connected; throws when the server cannot be reached.
    public func connect() throws(PostgresError) {
        if isConnected { return }
        disconnect()
        let now = monotonicMilliseconds()
        if now < nextConnectAttempt {
            throw .connectionFailed(message: "database unreachable, next attempt in \(nextConnectAttempt - now) ms")
        }
        var keywords = ["dbname", "connect_timeout", "application_name", "options"]
        var values = [configuration.url, String(configuration.connectTimeoutSeconds), configuration.applicationName,
                      "-c statement_timeout=\(configuration.statementTimeoutMilliseconds)"]
        if let timeout = configuration.tcpUserTimeoutMilliseconds {
            keywords.append("tcp_user_timeout")
            values.append(String(timeout))
        }
        let conn = withCStringArray(keywords) { keys in
            withCStringArray(values) { vals in PQconnectdbParams(keys, vals, 1) }
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map(errorMessage) ?? "out of memory"
            if let conn { PQfinish(conn) }
            nextConnectAttempt = monotonicMilliseconds() + UInt64(configuration.reconnectIntervalMilliseconds)
            throw .connectionFailed(message: message)
        }
        connection = conn
        sessions += 1
        prepared.removeAll(keepingCapacity: true)
    }

    /// Closes the connection; the next call reconnects.
    public func disconnect() {
        if let connection { PQfinish(connection) }
        connection = nil
        prepared.removeAll(keepingCapacity: true)
    }

    private func executeOnce(_ statement: PreparedStatement, _ parameters: [String?]) throws(PostgresError) -> PostgresResult {
        try connect()
        guard let connection else { throw .connectionFailed(message: "not connected") }
        if !prepared.contains(statement.name) {
            let result = PQprepare(connection, statement.name, statement.sql, 0, nil)
            try check(result, statement: statement, expecting: PGRES_COMMAND_OK)
            PQclear(result)
            prepared.insert(statement.name)
        }
        for (index, parameter) in parameters.enumerated() where parameter?.utf8.contains(0) == true {
            throw .invalidParameter(statement: statement.name, index: index + 1)
        }
        let result = withOptionalCStringArray(parameters) { values in
            PQexecPrepared(connection, statement.name, Int32(parameters.count), values, nil, nil, 0)
        }
        try check(result, statement: statement, expecting: PGRES_TUPLES_OK)
        return PostgresResult(handle: result!, statement: statement.name)
    }

    /// Throws the right error for a failed result and frees it; returns quietly on success.
    private func check(_ result: OpaquePointer?, statement: PreparedStatement, expecting: ExecStatusType) throws(PostgresError) {
        let status = result.map(PQresultStatus)
        if status == expecting || (expecting == PGRES_TUPLES_OK && status == PGRES_COMMAND_OK) { return }
        defer { if let result { PQclear(result) } }
        guard let connection, PQstatus(connection) == CONNECTION_OK, let result else {
            let message = connection.map(errorMessage) ?? "connection lost"
            disconnect()
            throw .connectionLost(message: message)
        }
        let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
        let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? ""
        switch sqlState {
        case "57014":  // query_canceled: statement_timeout
            throw .statementTimeout(statement: statement.name)
        case "57P01", "57P02", "57P03":  // admin_shutdown, crash_shutdown, cannot_connect_now
            disconnect()
            throw .connectionLost(message: message)
        default:
            throw .queryFailed(statement: statement.name, sqlState: sqlState, message: message)
        }
    }

}

/// libpq's last error message on `connection`, without its trailing newline.
func errorMessage(_ connection: OpaquePointer) -> String {
    guard let message = PQerrorMessage(connection) else { return "unknown error" }
    return String(cString: message).trimmingSuffix { $0 == "\n" || $0 == " " }
}

private func monotonicMilliseconds() -> UInt64 {
    monotonicMicroseconds() / 1000
}

private func monotonicMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}

func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStringArray(strings + [nil], body)
}

/// Passes `strings` to C as `const char *const *`, `nil` entries as NULL pointers.
private func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafePointer<CChar>?] = []
    pointers.reserveCapacity(strings.count)
    var storage: [UnsafeMutablePointer<CChar>] = []
    defer { storage.forEach { free($0) } }
    for string in strings {
        guard let string else { pointers.append(nil); continue }
        let copy = strdup(string)!
        storage.append(copy)
        pointers.append(UnsafePointer(copy))
    }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var result = Substring(self)
        while let last = result.last, predicate(last) { result = result.dropLast() }
        return String(result)
    }
}
