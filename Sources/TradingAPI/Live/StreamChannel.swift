import Crypto

/// The nchan channel of one token's live stream: `t.` and 32 hex digits of the token's SHA-256.
///
/// One channel per token, not per user, so that a stream ends with its token: the supervisor
/// deletes the channel at `exp` (nchan then closes its subscribers), once — nchan 1.3.6 leaves
/// subscribers behind on a channel deleted and re-created repeatedly (slact/nchan#691). The id
/// names no user, and is not the token: a leaked channel id lets nobody read or subscribe (the
/// subscriber location is `internal`; only a worker redirects into it).
struct StreamChannel: Hashable, Sendable {
    let id: String

    private static let hexDigits = Array("0123456789abcdef".utf8)

    init(token: String) {
        let digest = SHA256.hash(data: Array(token.utf8))
        let hex = digest.prefix(16).flatMap { [Self.hexDigits[Int($0 >> 4)], Self.hexDigits[Int($0 & 0x0f)]] }
        id = "t." + String(decoding: hex, as: UTF8.self)
    }

    /// A channel id as the supervisor receives it (`trading_api_streams`); `nil` unless well formed.
    init?(id: String) {
        let hex = id.utf8.dropFirst(2)
        guard id.hasPrefix("t."), hex.count == 32,
              hex.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
        else { return nil }
        self.id = id
    }
}
