import Crypto

/// A finished view as memcached holds it: the body with what decides whether it may be served.
///
/// Stored as one line of text, then the body bytes:
/// `<epoch> <generation> <changes at, µs since the epoch, or -> <ETag>\n<body>`.
struct CachedView: Equatable {
    /// The epoch and the user's generation read before the view's query ran.
    var epoch: CacheGeneration
    var generation: CacheGeneration
    /// When the view would change by the clock alone (a status turning idle, a row leaving a
    /// window); `nil` when only a write can change it. The entry is not served from then on.
    var changesAt: Timestamp?
    /// The strong entity tag, quoted: `"<32 hex digits>"`.
    var etag: String
    var body: [UInt8]

    init(epoch: CacheGeneration, generation: CacheGeneration, changesAt: Timestamp?, etag: String, body: [UInt8]) {
        self.epoch = epoch
        self.generation = generation
        self.changesAt = changesAt
        self.etag = etag
        self.body = body
    }

    /// The strong ETag of a body: the first 128 bits of its SHA-256, so two different bodies
    /// never share one (RFC 9110 §8.8.3).
    static func etag(of body: [UInt8]) -> String {
        let digest = SHA256.hash(data: body)
        var text = "\""
        for byte in digest.prefix(16) {
            text += byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }
        return text + "\""
    }

    /// True while the clock alone has not changed the view.
    func isCurrent(at now: Timestamp) -> Bool {
        changesAt.map { now < $0 } ?? true
    }

    var encoded: [UInt8] {
        let header = "\(epoch) \(generation) \(changesAt.map { String($0.microseconds) } ?? "-") \(etag)\n"
        var bytes = Array(header.utf8)
        bytes.reserveCapacity(bytes.count + body.count)
        bytes += body
        return bytes
    }

    /// `nil` when `bytes` are not an entry this version wrote.
    init?(decoding bytes: [UInt8]) {
        guard let newline = bytes.prefix(128).firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let fields = bytes[..<newline].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count == 4, let epoch = CacheGeneration(fields[0]), let generation = CacheGeneration(fields[1]),
              fields[3].count == 34, fields[3].first == UInt8(ascii: "\""), fields[3].last == UInt8(ascii: "\"")
        else { return nil }
        var changesAt: Timestamp?
        if fields[2] != [UInt8(ascii: "-")] {
            guard let microseconds = Int64(String(decoding: fields[2], as: UTF8.self)) else { return nil }
            changesAt = Timestamp(microseconds: microseconds)
        }
        self.init(epoch: epoch, generation: generation, changesAt: changesAt,
                  etag: String(decoding: fields[3], as: UTF8.self), body: Array(bytes[(newline + 1)...]))
    }
}
