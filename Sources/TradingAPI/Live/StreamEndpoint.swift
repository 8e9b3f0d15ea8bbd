import Postgres

/// `GET /api/v1/stream`: the worker's part of the live stream. It verifies the token like any
/// request, tells the supervisor which channel the token streams on (so that events reach it and
/// it ends at `exp`), and answers with an `X-Accel-Redirect` into nginx's internal nchan
/// subscriber location: nginx holds the connection, the worker is free at once.
///
/// A reconnecting client (it sends `Last-Event-ID`) resumes from that id when nchan still holds
/// it (`StreamResume`: the messages it missed come first); otherwise it gets one `event: resync`
/// and the stream ends, and the browser reconnects without the id and refetches what it shows.
/// No id is passed to nchan unchecked: nchan 1.3.6 can crash on an id it does not hold
/// (slact/nchan#534).
enum StreamEndpoint {
    /// A token with less left than this cannot open a stream: the supervisor deletes the
    /// channel at `exp`, and a subscriber must never arrive after that.
    static let minimumTokenLifetimeSeconds: Int64 = 10
    static let redirectPrefix = "/_stream/"
    static let contentType = "text/event-stream; charset=utf-8"

    /// Records the channel (the supervisor reads `live_streams` when it starts) and tells the
    /// running supervisor at once (`NOTIFY trading_api_streams`, on commit).
    static let register = PreparedStatement(name: "stream_register", sql: """
        WITH registered AS (
            INSERT INTO live_streams (channel, user_id, expires_at)
            VALUES ($1, $2::uuid, to_timestamp($3::bigint))
            ON CONFLICT (channel) DO UPDATE SET expires_at = greatest(live_streams.expires_at, excluded.expires_at)
            RETURNING 1)
        SELECT pg_notify('\(StreamRegistration.channel)', $4) FROM registered
        """)

    /// The ids the supervisor published to a channel of this user, oldest first.
    static let recentIDs = PreparedStatement(name: "stream_recent_ids", sql: """
        SELECT array_to_string(recent_ids, ' ') AS ids FROM live_streams WHERE channel = $1 AND user_id = $2::uuid
        """)

    /// The redirect for `token` (the credentials of its `Authorization` header); for a reconnect
    /// (`lastEventID`), from that id when nchan still holds it (`StreamResume`), else a resync.
    static func open(token: VerifiedToken, credentials: String, lastEventID: String?, now: Int64,
                     database: PostgresConnection, probe: StreamProbe?) throws(APIError) -> APIResponse {
        let expiresAt = Int64(token.expiresAt.rounded(.down))
        guard expiresAt - now >= minimumTokenLifetimeSeconds else {
            throw .unauthorized("the token expires in less than \(minimumTokenLifetimeSeconds) s; open the stream with a fresh one")
        }
        let channel = StreamChannel(token: credentials)
        var query = ""
        if let lastEventID {
            guard case .resume(let id) = resumption(of: channel, user: token.user, lastEventID: lastEventID,
                                                    database: database, probe: probe)
            else { return resync() }
            query = "?lid=" + id  // digits and one colon (StreamResume.isMessageID)
        }
        let registration = StreamRegistration(user: token.user, channel: channel, expiresAt: expiresAt)
        do {
            _ = try database.execute(register, [channel.id, token.user.uuid, String(expiresAt), registration.payload])
        } catch {
            throw .unavailable(retryAfterSeconds: 1)
        }
        return APIResponse(status: 200, headers: [
            ("X-Accel-Redirect", redirectPrefix + channel.id + query),
            ("X-Accel-Buffering", "no"),
            ("Cache-Control", "no-store"),
        ], body: [], contentType: contentType)
    }

    private static func resumption(of channel: StreamChannel, user: UserID, lastEventID: String,
                                   database: PostgresConnection, probe: StreamProbe?) -> StreamResume {
        guard StreamResume.isMessageID(lastEventID), let probe,
              let rows = try? database.execute(recentIDs, [channel.id, user.uuid]), rows.rowCount == 1,
              let info = probe.info(of: channel)
        else { return .resync }
        let recent = (rows.string(0, 0) ?? "").split(separator: " ").map(String.init)
        return StreamResume.decide(lastEventID: lastEventID, recent: recent, held: info.messages, newest: info.newest)
    }

    /// One `resync` event that clears the client's last event id, then the end of the stream;
    /// the client reconnects after `retry` (1–2 s, spread so that reconnects after an nginx
    /// reload do not arrive at once).
    static func resync() -> APIResponse {
        let retry = 1000 + Int.random(in: 0..<1000)
        let text = "retry: \(retry)\nevent: resync\nid\ndata: {\"reason\":\"reconnected\"}\n\n"
        return APIResponse(status: 200, headers: [("Cache-Control", "no-store")], body: Array(text.utf8),
                           contentType: contentType)
    }

    /// The credentials of an `Authorization` header (what follows the scheme).
    static func credentials(of authorization: String?) -> String {
        guard let authorization, let space = authorization.firstIndex(of: " ") else { return authorization ?? "" }
        return String(authorization[authorization.index(after: space)...].drop { $0 == " " || $0 == "\t" })
    }
}
