import FoundationEssentials
import HTTPClient

/// Whether a reconnecting client's `Last-Event-ID` can be resumed from nchan's buffer, or the
/// client must resync. No I/O: the worker reads what the supervisor recorded (`recent`, the ids
/// it published to the channel, oldest first) and what nchan holds now (`held` messages, the
/// newest `newest`), and redirects with `?lid=` only for an id nchan certainly holds: nchan 1.3.6
/// can crash a worker process on an id it does not (slact/nchan#534), and after an nginx reload
/// it holds nothing at all.
enum StreamResume: Equatable {
    case resume(from: String)
    case resync

    /// The ring `LivePublisher` keeps per channel: nginx's `nchan_message_buffer_length`.
    static let bufferLength = 32

    static func decide(lastEventID: String, recent: [String], held: Int, newest: String?) -> StreamResume {
        guard held > 0, let newest, newest == recent.last,
              let position = recent.lastIndex(of: lastEventID),
              position >= recent.count - held  // still in nchan's buffer
        else { return .resync }
        return .resume(from: lastEventID)
    }

    /// nchan's id syntax, `<seconds>:<tag>`: anything else is never sent on.
    static func isMessageID(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.count <= 20 && $0.allSatisfy(\.isASCIIDigit) }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// What nchan's publisher says of a channel (`Accept: text/json` on a publish or a `GET`):
/// `{"messages":N,"requested":…,"subscribers":…,"last_message_id":"<time>:<tag>"}`.
struct ChannelInfo: Decodable, Equatable {
    var messages: Int
    var newest: String?

    enum CodingKeys: String, CodingKey {
        case messages
        case newest = "last_message_id"
    }

    static func parse(_ body: [UInt8]) -> ChannelInfo? {
        try? JSONDecoder().decode(ChannelInfo.self, from: Data(body))
    }
}

/// A worker's look at nchan's publisher: what a channel holds now. One per request loop (it
/// keeps its own connection to the publisher).
public final class StreamProbe {
    private let client: PlainHTTPClient

    /// `publisher`: nchan's publisher, a unix socket path or `host:port`.
    /// - Throws: `HTTPClientError` when libcurl cannot make a handle.
    public init(publisher: String) throws(HTTPClientError) {
        client = try PlainHTTPClient(server: publisher, timeoutMilliseconds: 500)
    }

    /// `nil` when nchan has no such channel or cannot be asked.
    func info(of channel: StreamChannel) -> ChannelInfo? {
        guard let response = try? client.request("GET", path: "/pub/" + channel.id, headers: [("Accept", "text/json")]),
              response.status == 200 else { return nil }
        return ChannelInfo.parse(response.body)
    }
}
