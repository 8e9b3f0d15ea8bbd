import HTTPClient
import Logging
import Postgres

/// The supervisor's half of the live stream: it keeps the open streams (`StreamRegistry`, fed
/// by the workers' registrations), publishes `event: guard` (`GuardWatch`) and `event: changed`
/// to a user's channels after their commits, and deletes each channel when its token expires
/// (nchan then ends its streams).
///
/// Publishes to nginx's nchan publisher over its unix socket (`NCHAN_PUBLISH_SOCKET`), on the
/// change listener's thread. The open channels are also rows of `live_streams` (the workers
/// write them), read again whenever the listener connects: a restarted supervisor still ends
/// every stream at its token's `exp`.
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

    private let client: UnixSocketHTTPClient
    private let database: PostgresConnection
    private let logger: Logger
    private var registry = StreamRegistry()
    private var guards = GuardWatch()

    /// - Throws: `HTTPClientError` when libcurl cannot make a handle.
    public init(socketPath: String, database: PostgresConnection.Configuration, logger: Logger) throws(HTTPClientError) {
        client = try UnixSocketHTTPClient(socketPath: socketPath, timeoutMilliseconds: 1000)
        self.database = PostgresConnection(configuration: database)
        self.logger = logger
    }

    /// Reads the open channels from `live_streams` (after the listener's `LISTEN`, so none is
    /// missed); those whose token expired while nobody was watching are ended now.
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
            end(ended)
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

    /// How long until the next token expires, for the listener's wait; `nil` with no streams.
    func millisecondsUntilNextExpiry(nowMilliseconds: Int64) -> Int64? {
        registry.nextExpiry.map { max(0, $0 * 1000 - nowMilliseconds) }
    }

    @discardableResult
    private func send(_ method: String, _ channel: StreamChannel, headers: [(String, String)] = [],
                      body: [UInt8] = []) -> UnixSocketHTTPClient.Response? {
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
