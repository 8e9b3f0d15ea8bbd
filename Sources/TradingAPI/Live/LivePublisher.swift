import Crypto
import FoundationEssentials
import HTTPClient
import Logging
import Postgres

/// The supervisor's half of the live stream: it keeps the open streams (`StreamRegistry`, fed
/// by the workers' registrations), publishes `event: guard` (`GuardWatch`) and `event: changed`
/// to a user's channels after their commits, and deletes each channel when its token expires
/// (nchan then ends its streams).
///
/// Publishes to nginx's nchan publisher (`NCHAN_PUBLISH_SOCKET`: its unix socket, or `host:port`
/// from a worker host), on the change listener's thread. The open channels are also rows of
/// `live_streams` (the workers write them), read again whenever the listener connects: a
/// restarted supervisor still ends every stream at its token's `exp`.
///
/// One publisher for all worker hosts: every supervisor hears every commit, but only the one
/// holding the advisory lock of its publisher (`lockKey`) on its session publishes and ends
/// streams; the others keep their registries and take over when that session ends (its host
/// died, or lost Postgres), reading the open streams again and telling every stream to refetch.
/// The lock is the publisher's: supervisors naming the same `NCHAN_PUBLISH_SOCKET` share it;
/// another deployment on the same database (its own nginx) publishes to its own.
public final class LivePublisher {
    /// `event: changed`'s data: every view's path, for the client to fetch again.
    static let changedViews: [UInt8] = {
        let paths = Endpoints.all.map { "\"/api/v1/\($0.path)\"" }.joined(separator: ",")
        return Array("{\"views\":[\(paths)]}".utf8)
    }()

    static let openStreams = PreparedStatement(name: "live_streams_open", sql: """
        SELECT channel, user_id::text AS user_id, extract(epoch FROM expires_at)::bigint AS expires_at
        FROM live_streams
        """)
    static let forget = PreparedStatement(name: "live_streams_forget", sql: """
        DELETE FROM live_streams WHERE channel = $1
        """)
    /// Appends a published message's id to the channel's ring (`StreamResume.bufferLength`).
    static let remember = PreparedStatement(name: "live_streams_remember", sql: """
        UPDATE live_streams
        SET recent_ids = (recent_ids || $2::text)[greatest(1, cardinality(recent_ids) + 2 - \(StreamResume.bufferLength)):]
        WHERE channel = $1
        """)

    /// The session-level advisory lock whose holder publishes to `publisher`: the first 31 bits
    /// of the SHA-256 of its name (a key whose high half is 0, so `pg_locks` shows it as `objid`).
    static func lockKey(of publisher: String) -> String {
        let digest = Array(SHA256.hash(data: Array(publisher.utf8)))
        return String((UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3])) & 0x7fff_ffff)
    }

    /// True when this session holds the lock (taking it when free); a session holds it once.
    static let lead = PreparedStatement(name: "live_publisher_lead", sql: """
        SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                                 AND classid = 0 AND objid = $1::int8::oid AND objsubid = 1 AND granted)
                    THEN true ELSE pg_try_advisory_lock($1::int8) END AS leads
        """)

    private let client: PlainHTTPClient
    private let lockKey: String
    private let database: PostgresConnection
    private let logger: Logger
    private var registry = StreamRegistry()
    private var guards = GuardWatch()
    /// Whether this supervisor published at the last look (`leads`).
    private var isPublisher = false

    /// `publisher`: nchan's publisher, a unix socket path or `host:port`.
    /// - Throws: `HTTPClientError` when libcurl cannot make a handle.
    public init(publisher: String, database: PostgresConnection.Configuration, logger: Logger) throws(HTTPClientError) {
        client = try PlainHTTPClient(server: publisher, timeoutMilliseconds: 1000)
        lockKey = Self.lockKey(of: publisher)
        self.database = PostgresConnection(configuration: database)
        self.logger = logger
    }

    /// Whether this supervisor is the publisher now. On becoming it, the open streams are read
    /// again and each is told to refetch (what was committed while nobody published is unknown).
    private func leads(now: Int64) -> Bool {
        let leads: Bool
        do {
            leads = try database.execute(Self.lead, [lockKey]).bool(0, 0) ?? false
        } catch {
            if isPublisher {
                logger.warning("cannot tell whether this supervisor publishes the live stream; it stops", metadata: ["error": "\(error)"])
            }
            leads = false
        }
        if leads != isPublisher {
            isPublisher = leads
            logger.info(leads ? "this supervisor publishes the live stream" : "another supervisor publishes the live stream")
            if leads {
                restore(now: now)
                changed([], everyone: true)
            }
        }
        return leads
    }

    /// Reads the open channels from `live_streams` (after the listener's `LISTEN`, so none is
    /// missed); the publisher ends those whose token expired while nobody was watching.
    func restore(now: Int64) {
        do {
            let rows = try database.execute(Self.openStreams, [])
            var ended: [StreamChannel] = []
            for row in 0..<rows.rowCount {
                guard let channel = rows.string(row, 0).flatMap(StreamChannel.init(id:)),
                      let user = rows.string(row, 1).flatMap(UserID.init), let expiresAt = rows.int(row, 2)
                else { continue }
                if Int64(expiresAt) <= now {
                    ended.append(channel)
                } else {
                    registry.register(channel, user: user, expiresAt: Int64(expiresAt), now: now)
                }
            }
            if isPublisher { end(ended) }
            logger.info("live streams restored", metadata: ["open": "\(registry.count)", "ended": "\(ended.count)"])
        } catch {
            logger.warning("cannot read the open live streams; they end at nginx's restart at the latest",
                           metadata: ["error": "\(error)"])
        }
    }

    /// A worker opened a stream (a `trading_api_streams` payload).
    func register(payload: String, now: Int64) {
        guard let registration = StreamRegistration(payload: payload) else {
            logger.warning("unexpected stream registration", metadata: ["payload": "\(payload)"])
            return
        }
        registry.register(registration.channel, user: registration.user, expiresAt: registration.expiresAt, now: now)
    }

    /// Commits touched `users`' rows (every user when `everyone`): each of their channels gets
    /// `event: guard` for what `GuardWatch` announces, then `event: changed`.
    func changed(_ users: Set<UserID>, everyone: Bool) {
        guard leads(now: Self.nowSeconds()) else { return }
        if everyone {
            for channel in registry.allChannels { publish("changed", Self.changedViews, to: channel) }
            return
        }
        for user in users {
            let channels = registry.channels(of: user)
            guard !channels.isEmpty else { continue }
            for event in guardEvents(of: user) {
                let data = GuardWatch.data(event)
                for channel in channels { publish("guard", data, to: channel) }
            }
            for channel in channels { publish("changed", Self.changedViews, to: channel) }
        }
    }

    /// The guards view of `user` now, through `GuardWatch`; none when Postgres cannot say.
    private func guardEvents(of user: UserID) -> [GuardWatch.Event] {
        do {
            let status = try GuardsStatusView.decode(try database.execute(GuardsStatusView.statement, [user.uuid]))
            return guards.observe(status, of: user)
        } catch {
            logger.warning("cannot read the guards for the live stream", metadata: ["error": "\(error)"])
            return []
        }
    }

    private func publish(_ event: String, _ data: [UInt8], to channel: StreamChannel) {
        let response = send("POST", channel, headers: [("X-EventSource-Event", event), ("Content-Type", "application/json"),
                                                       ("Accept", "text/json")], body: data)
        // The message's id, for a reconnect to resume from (StreamResume).
        guard let response, [201, 202].contains(response.status), let id = ChannelInfo.parse(response.body)?.newest else { return }
        do {
            _ = try database.execute(Self.remember, [channel.id, id])
        } catch {
            logger.warning("cannot record a live stream message id", metadata: ["error": "\(error)"])
        }
    }

    /// Ends the streams whose token expired by `now` (seconds since the epoch).
    func expire(now: Int64) {
        let ended = registry.expire(now: now)
        guard leads(now: now) else { return }
        end(ended.map(\.channel))
        for user in Set(ended.map(\.user)) where registry.channels(of: user).isEmpty {
            guards.forget(user)
        }
    }

    private func end(_ channels: [StreamChannel]) {
        for channel in channels {
            send("DELETE", channel)
            do {
                _ = try database.execute(Self.forget, [channel.id])
            } catch {
                logger.warning("cannot forget an ended live stream", metadata: ["channel": "\(channel.id)", "error": "\(error)"])
            }
        }
    }

    private static func nowSeconds() -> Int64 {
        Int64(Date().timeIntervalSince1970)
    }

    /// How long until the next token expires, for the listener's wait; `nil` with no streams.
    func millisecondsUntilNextExpiry(nowMilliseconds: Int64) -> Int64? {
        registry.nextExpiry.map { max(0, $0 * 1000 - nowMilliseconds) }
    }

    @discardableResult
    private func send(_ method: String, _ channel: StreamChannel, headers: [(String, String)] = [],
                      body: [UInt8] = []) -> PlainHTTPClient.Response? {
        do {
            let response = try client.request(method, path: "/pub/" + channel.id, headers: headers, body: body)
            // nchan: 201 delivered, 202 buffered (no subscriber yet), 200 deleted, 404 already gone.
            if ![200, 201, 202, 404].contains(response.status) {
                logger.warning("nchan refused", metadata: ["method": "\(method)", "channel": "\(channel.id)",
                                                           "status": "\(response.status)"])
            }
            return response
        } catch {
            logger.warning("cannot reach nchan's publisher", metadata: ["method": "\(method)", "error": "\(error)"])
            return nil
        }
    }
}
