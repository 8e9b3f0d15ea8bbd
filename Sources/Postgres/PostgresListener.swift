#if canImport(Glibc)
import Glibc
#endif
import CLibPQ

/// A notification delivered by Postgres to a `LISTEN`ing session (`NOTIFY channel, 'payload'`).
public struct PostgresNotification: Equatable, Sendable {
    public var channel: String
    public var payload: String

    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// One libpq session that `LISTEN`s on channels and waits for their notifications.
///
/// Postgres delivers a notification only when the notifying transaction commits, in commit order,
/// and folds identical ones of one transaction into one. A session that is lost loses whatever
/// was notified meanwhile: the caller must treat a reconnect as "anything may have changed".
/// Owned by one thread.
public final class PostgresListener {
    public let configuration: PostgresConnection.Configuration
    private var connection: OpaquePointer?

    /// The connection's TCP keepalives: a dead peer is noticed after idle + interval × count
    /// seconds (11 s) of silence.
    public static let keepaliveIdleSeconds = 5
    public static let keepaliveIntervalSeconds = 2
    public static let keepaliveCount = 3
    /// The same bound for a peer that stops acknowledging what was sent (`tcp_user_timeout`).
    public static let deadPeerMilliseconds = (keepaliveIdleSeconds + keepaliveIntervalSeconds * keepaliveCount) * 1000

    public init(configuration: PostgresConnection.Configuration) {
        self.configuration = configuration
    }

    deinit { disconnect() }

    public var isConnected: Bool {
        guard let connection else { return false }
        return PQstatus(connection) == CONNECTION_OK
    }

    /// Connects and `LISTEN`s on every channel; throws `.connectionFailed` when the server cannot
    /// be reached and `.invalidIdentifier` for a channel that is not a plain lowercase identifier.
    public func connect(listeningOn channels: [String]) throws(PostgresError) {
        disconnect()
        for channel in channels where !Self.isPlainIdentifier(channel) {
            throw .invalidIdentifier(channel)
        }
        // TCP keepalives: a session the server dropped while this host was unreachable (its own
        // keepalives) is noticed within seconds, not never: a listener only ever reads.
        // tcp_user_timeout: a query (the listener's few) whose bytes go unacknowledged fails as
        // soon, instead of after TCP's ~15 minutes of retransmission.
        let keywords = ["dbname", "connect_timeout", "application_name",
                        "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"]
        let values = [configuration.url, String(configuration.connectTimeoutSeconds), configuration.applicationName,
                      "1", String(Self.keepaliveIdleSeconds), String(Self.keepaliveIntervalSeconds), String(Self.keepaliveCount),
                      String(Self.deadPeerMilliseconds)]
        let conn = withCStringArray(keywords) { keys in
            withCStringArray(values) { vals in PQconnectdbParams(keys, vals, 1) }
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map(errorMessage) ?? "out of memory"
            if let conn { PQfinish(conn) }
            throw .connectionFailed(message: message)
        }
        connection = conn
        for channel in channels {
            let result = PQexec(conn, "LISTEN \(channel)")
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COMMAND_OK else {
                let message = errorMessage(conn)
                disconnect()
                throw .connectionLost(message: message)
            }
        }
    }

    public func disconnect() {
        if let connection { PQfinish(connection) }
        connection = nil
    }

    /// The first column of the first row of `sql` (a query without parameters), `nil` for SQL
    /// NULL or no row. Notifications that arrive meanwhile are kept for `waitForNotifications`.
    /// Throws `.connectionLost` (and disconnects) when the session broke, `.queryFailed` when the
    /// server refused the query.
    public func value(of sql: StaticString) throws(PostgresError) -> String? {
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            throw .connectionLost(message: "not connected")
        }
        let result = PQexec(connection, sql.description)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else {
            let message = errorMessage(connection)
            if PQstatus(connection) != CONNECTION_OK {
                disconnect()
                throw .connectionLost(message: message)
            }
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
            throw .queryFailed(statement: sql.description, sqlState: sqlState, message: message)
        }
        guard PQntuples(result) > 0, PQgetisnull(result, 0, 0) == 0 else { return nil }
        return String(cString: PQgetvalue(result, 0, 0))
    }

    /// Waits up to `timeoutMilliseconds` for notifications, or until `wakeDescriptor` (if any)
    /// becomes readable; returns those that arrived, in commit order (possibly none). Throws
    /// `.connectionLost` (and disconnects) when the session broke.
    public func waitForNotifications(timeoutMilliseconds: Int32, wakeDescriptor: Int32? = nil) throws(PostgresError) -> [PostgresNotification] {
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            throw .connectionLost(message: "not connected")
        }
        var pending = drain(connection)
        if !pending.isEmpty { return pending }
        var descriptors = [pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)]
        if let wakeDescriptor { descriptors.append(pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&descriptors, nfds_t(descriptors.count), timeoutMilliseconds)
        if ready < 0 && errno != EINTR { throw .connectionLost(message: "poll: errno \(errno)") }
        guard descriptors[0].revents != 0 else { return [] }
        guard PQconsumeInput(connection) == 1 else {
            let message = errorMessage(connection)
            disconnect()
            throw .connectionLost(message: message)
        }
        pending = drain(connection)
        if PQstatus(connection) != CONNECTION_OK {
            disconnect()
            throw .connectionLost(message: "connection closed")
        }
        return pending
    }

    private func drain(_ connection: OpaquePointer) -> [PostgresNotification] {
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(connection) {
            notifications.append(PostgresNotification(channel: String(cString: notify.pointee.relname),
                                                      payload: String(cString: notify.pointee.extra)))
            PQfreemem(notify)
        }
        return notifications
    }

    static func isPlainIdentifier(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, (1...63).contains(bytes.count),
              first == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else { return false }
        return bytes.allSatisfy {
            $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
        }
    }
}
