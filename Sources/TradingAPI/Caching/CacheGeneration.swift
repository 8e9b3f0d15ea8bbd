import Memcached

/// A random 64-bit tag naming one version of a user's data (or of the whole cache, the epoch).
///
/// Every cached view is stored with the epoch and its user's generation as read *before* its
/// query ran; the supervisor replaces the user's generation after every commit that touches the
/// user's rows (`ChangeListener`), and the epoch whenever notifications may have been missed. A
/// lookup that finds other tags than the entry's is a miss, so an entry computed before a commit
/// is never served after the commit has been seen. Tags are random rather than counters so that
/// one recreated after an eviction can never equal one an old entry carries.
public struct CacheGeneration: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64

    /// `nil` unless `bytes` are 16 hex digits, as stored in memcached. (A plain loop over a
    /// buffer into an integer: it runs on every lookup and allocates nothing.)
    public init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            switch byte {
            case 0x30...0x39: value = value << 4 | UInt64(byte - 0x30)
            case 0x61...0x66: value = value << 4 | UInt64(byte - 0x61 + 10)
            case 0x41...0x46: value = value << 4 | UInt64(byte - 0x41 + 10)
            default: return nil
            }
        }
        self.value = value
    }

    public init?(_ bytes: [UInt8]) {
        guard let tag = bytes.withUnsafeBufferPointer(CacheGeneration.init) else { return nil }
        self = tag
    }

    init(value: UInt64) { self.value = value }

    public static func random() -> CacheGeneration {
        CacheGeneration(value: UInt64.random(in: .min ... .max))
    }

    /// 16 lowercase hex digits, as stored in memcached.
    public var text: String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.utf8.count) + hex
    }

    public var description: String { text }
}

/// A tag as memcached holds it for a user's generation or an epoch copy: 16 hex digits, or, when
/// the workers may read views from a replica (`DATABASE_READ_URL`), the tag, a space and the
/// primary's WAL insert position when the change listener wrote it (16 hex digits): a view
/// computed under the tag must come from a snapshot that has replayed at least that far
/// (`ReadReplica`).
struct StoredTag: Equatable {
    var tag: CacheGeneration
    /// `nil`: unknown (written without one): views under this tag are read from the primary.
    var walPosition: UInt64?

    init(tag: CacheGeneration, walPosition: UInt64?) {
        self.tag = tag
        self.walPosition = walPosition
    }

    /// `nil` unless `bytes` are one of the two forms above.
    init?(_ bytes: [UInt8]) {
        let parsed = bytes.withUnsafeBufferPointer { buffer -> StoredTag? in
            guard let tag = CacheGeneration(UnsafeBufferPointer(rebasing: buffer.prefix(16))) else { return nil }
            if buffer.count == 16 { return StoredTag(tag: tag, walPosition: nil) }
            guard buffer.count == 33, buffer[16] == 0x20,
                  let position = CacheGeneration(UnsafeBufferPointer(rebasing: buffer[17...])) else { return nil }
            return StoredTag(tag: tag, walPosition: position.value)
        }
        guard let parsed else { return nil }
        self = parsed
    }

    var bytes: [UInt8] {
        guard let walPosition else { return Array(tag.text.utf8) }
        return Array((tag.text + " " + CacheGeneration(value: walPosition).text).utf8)
    }
}

/// The memcached keys of the cache, all under one format version.
///
/// `ta3:<view>:<user>[:<parameters>]` a view's entry (`CachedView`), `ta3:gen:<user>` the user's
/// generation, `ta3:epoch:<n>` the epoch's copies (one per memcached server, `epochCopies`),
/// `ta3:lock:<view>:<user>[:<parameters>]` a view's stampede lock. Built only from the verified
/// token's user and validated parameters, so two users or two views can never share one.
public enum CacheKeys {
    /// Bumped when the format of a cached entry or the meaning of a key changes, so old entries
    /// are never read (ta3: the epoch became one copy per server).
    static let version = "ta3"
    /// The epoch's value while the supervisor does not listen for changes: lookups are `BYPASS`.
    public static let pausedEpoch = Array("paused".utf8)

    /// The keys of the epoch's copies, one on each of `client`'s servers in the order of its
    /// server list (`MemcachedClient.keysOnEachServer`): the same for every worker and listener
    /// configured with the same `MEMCACHED_SERVERS`. With one server: `ta3:epoch:0`.
    public static func epochCopies(in client: MemcachedClient) throws(MemcachedError) -> [String] {
        try client.keysOnEachServer(prefix: "\(version):epoch:")
    }

    public static func generation(of user: UserID) -> String { "\(version):gen:\(user.uuid)" }

    /// The stampede lock of a view's entry (`ResponseCache.lock`).
    static func lock(_ viewKey: String) -> String { "\(version):lock:\(viewKey.dropFirst(version.count + 1))" }

    static func view(_ name: String, user: UserID, parameters: String = "") -> String {
        parameters.isEmpty ? "\(version):\(name):\(user.uuid)" : "\(version):\(name):\(user.uuid):\(parameters)"
    }
}
