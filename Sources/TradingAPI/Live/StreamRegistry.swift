/// The supervisor's list of open live streams: which channels belong to which user, and when
/// each one's token expires. No I/O: `LivePublisher` carries out what it says.
///
/// Fed by the workers' registrations (`StreamRegistration`); a channel is kept until its
/// token's `exp`, then `expire(now:)` hands it out once for deletion.
struct StreamRegistry {
    private var channelsByUser: [UserID: [StreamChannel: Int64]] = [:]
    private var owners: [StreamChannel: UserID] = [:]

    /// Channels registered and not yet expired.
    var count: Int { owners.count }

    /// Records `channel` as `user`'s until `expiresAt` (seconds since the epoch). A channel
    /// registered again keeps the later expiry; one already expired is ignored.
    mutating func register(_ channel: StreamChannel, user: UserID, expiresAt: Int64, now: Int64) {
        guard expiresAt > now, owners[channel] == nil || owners[channel] == user else { return }
        owners[channel] = user
        channelsByUser[user, default: [:]][channel] = max(expiresAt, channelsByUser[user]?[channel] ?? 0)
    }

    /// `user`'s open channels, in no particular order.
    func channels(of user: UserID) -> [StreamChannel] {
        channelsByUser[user].map { Array($0.keys) } ?? []
    }

    /// Every open channel (a change for everyone, `*`).
    var allChannels: [StreamChannel] { Array(owners.keys) }

    /// Removes and returns the channels whose token expired at or before `now`, with their users.
    mutating func expire(now: Int64) -> [(channel: StreamChannel, user: UserID)] {
        var expired: [(channel: StreamChannel, user: UserID)] = []
        for (user, channels) in channelsByUser {
            let ended = channels.filter { $0.value <= now }.map(\.key)
            guard !ended.isEmpty else { continue }
            expired += ended.map { (channel: $0, user: user) }
            for channel in ended {
                channelsByUser[user]?[channel] = nil
                owners[channel] = nil
            }
            if channelsByUser[user]?.isEmpty == true { channelsByUser[user] = nil }
        }
        return expired
    }

    /// The earliest expiry still to come, in seconds since the epoch.
    var nextExpiry: Int64? {
        channelsByUser.values.lazy.flatMap(\.values).min()
    }
}

/// What a worker tells the supervisor when it opens a stream: `NOTIFY trading_api_streams`
/// with `<user uuid> <channel> <exp, seconds since the epoch>`.
struct StreamRegistration: Equatable {
    static let channel = "trading_api_streams"

    var user: UserID
    var channel: StreamChannel
    var expiresAt: Int64

    var payload: String { "\(user.uuid) \(channel.id) \(expiresAt)" }

    init(user: UserID, channel: StreamChannel, expiresAt: Int64) {
        self.user = user
        self.channel = channel
        self.expiresAt = expiresAt
    }

    /// `nil` for anything but three well-formed fields.
    init?(payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 3, let user = UserID(String(parts[0])), let channel = StreamChannel(id: String(parts[1])),
              let expiresAt = Int64(parts[2]) else { return nil }
        self.init(user: user, channel: channel, expiresAt: expiresAt)
    }
}
