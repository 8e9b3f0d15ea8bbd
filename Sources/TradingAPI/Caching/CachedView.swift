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
        "\"" + SHA256.hash(data: body).prefix(16).hexDigits + "\""
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

    /// `nil` when `bytes` are not an entry this version wrote. Runs on every hit: one pass over
    /// the header line with plain index arithmetic.
    init?(decoding bytes: [UInt8]) {
        let parsed = bytes.withUnsafeBufferPointer { buffer -> (CachedView, Int)? in
            // <epoch 16> <generation 16> <changes at> <etag 34>\n
            guard buffer.count > 70, buffer[16] == 0x20, buffer[33] == 0x20,
                  let epoch = CacheGeneration(UnsafeBufferPointer(rebasing: buffer[0..<16])),
                  let generation = CacheGeneration(UnsafeBufferPointer(rebasing: buffer[17..<33])) else { return nil }
            var index = 34
            var changesAt: Timestamp?
            if buffer[index] == UInt8(ascii: "-") {
                index += 1
            } else {
                var microseconds: Int64 = 0
                let start = index
                while index < buffer.count, index - start < 19, (0x30...0x39).contains(buffer[index]) {
                    microseconds = microseconds * 10 + Int64(buffer[index] - 0x30)
                    index += 1
                }
                guard index > start else { return nil }
                changesAt = Timestamp(microseconds: microseconds)
            }
            guard index + 36 <= buffer.count, buffer[index] == 0x20, buffer[index + 1] == UInt8(ascii: "\""),
                  buffer[index + 34] == UInt8(ascii: "\""), buffer[index + 35] == 0x0a else { return nil }
            let etag = String(decoding: UnsafeBufferPointer(rebasing: buffer[(index + 1)..<(index + 35)]), as: UTF8.self)
            return (CachedView(epoch: epoch, generation: generation, changesAt: changesAt, etag: etag, body: []), index + 36)
        }
        guard let (header, bodyStart) = parsed else { return nil }
        self = header
        body = Array(bytes[bodyStart...])
    }
}
