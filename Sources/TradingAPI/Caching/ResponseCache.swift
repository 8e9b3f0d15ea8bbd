import Logging
import Memcached

/// Cache-aside storage of finished views in memcached, per user, view and parameters, that is
/// never stale: an entry is served only while its user's generation and the epoch are the ones it
/// was computed under (`CacheGeneration`) and the clock has not changed it (`CachedView.changesAt`).
///
/// A lookup is one round trip: a multi-get of the entry and the user's generation, and of the
/// epoch's copies (one per memcached server, `EpochReading`) when this client's reading is older
/// than `epochRefreshMicroseconds` (the epoch changes only when the supervisor may have missed
/// commits or every user's views changed, so reading it at most every 10 ms per request loop
/// saves keys at a bounded lag). Only the change listener writes the epoch: while its copies are
/// missing or disagree, lookups are `BYPASS`.
/// A hit is the exact bytes a miss produced, so it costs no query and no JSON work. Any memcached
/// failure turns the request into a `BYPASS`: the answer comes from Postgres and is not stored.
///
/// No stampede: after a miss, one request takes the view's lock (memcached `add`) and computes
/// it; the others wait for its entry (`waitForEntry`) instead of all querying Postgres.
public final class ResponseCache {
    /// How long a request that found the view locked waits for the entry before computing the
    /// view itself, and how often it looks.
    static let lockWaitMilliseconds = 250
    static let lockPollMilliseconds = 2
    /// The lock's lifetime in memcached: it outlives a crashed holder by at most this.
    static let lockTTLSeconds = 2

    /// How old this client's copy of the epoch may be (request clock): a change of the epoch, or
    /// a pause, is seen at most this late.
    static let epochRefreshMicroseconds: Int64 = 10_000

    private let client: MemcachedClient?
    /// The keys of the epoch's copies (`CacheKeys.epochCopies`).
    private let epochCopies: [String]
    private let ttlSeconds: Int
    private let pause: (_ milliseconds: Int) -> Void
    /// The epoch as last read, and when.
    private var knownEpoch: (reading: EpochReading, readAt: Timestamp)?

    /// `client` nil or `ttlSeconds` 0 turns caching off (every response `BYPASS`). `ttlSeconds`
    /// only bounds how long memcached keeps an entry: freshness comes from the generations.
    /// `pause` sleeps the calling thread while a request waits for another's entry. Throws
    /// what `CacheKeys.epochCopies` throws.
    public convenience init(client: MemcachedClient?, ttlSeconds: Int, pause: @escaping (_ milliseconds: Int) -> Void) throws(MemcachedError) {
        let client = ttlSeconds > 0 ? client : nil
        let epochCopies = try client.map { client throws(MemcachedError) in try CacheKeys.epochCopies(in: client) } ?? []
        self.init(client: client, epochCopies: epochCopies, ttlSeconds: ttlSeconds, pause: pause)
    }

    /// Caching off: every response `BYPASS`.
    public static func uncached() -> ResponseCache {
        ResponseCache(client: nil, epochCopies: [], ttlSeconds: 0, pause: { _ in })
    }

    private init(client: MemcachedClient?, epochCopies: [String], ttlSeconds: Int, pause: @escaping (_ milliseconds: Int) -> Void) {
        self.client = client
        self.epochCopies = epochCopies
        self.ttlSeconds = ttlSeconds
        self.pause = pause
    }

    public var isEnabled: Bool { client != nil }

    /// The tags an entry is stored under: those read before its query ran, and the WAL position
    /// its query's snapshot must have reached (the later of theirs; `nil`: unknown, read from
    /// the primary).
    struct Tags: Equatable {
        var epoch: CacheGeneration
        var generation: CacheGeneration
        var walPosition: UInt64?
    }

    /// What a lookup found; its `X-Cache` header value says where the answer came from.
    enum Lookup: Equatable {
        case hit(CachedView)
        /// Nothing current: answered from Postgres, then stored under `tags` (not stored when a
        /// tag was missing and another request created it first). `stale`: an entry was there,
        /// made stale by a commit, a new epoch or the clock.
        case miss(tags: Tags?, stale: Bool = false)
        /// Caching is off, memcached could not be reached, or the cache is paused (the supervisor
        /// is not listening for commits): answered from Postgres, not stored.
        case bypass

        var outcome: MetricsLayout.CacheOutcome {
            switch self {
            case .hit: .hit
            case .miss(_, let stale): stale ? .stale : .miss
            case .bypass: .bypass
            }
        }

        var xCache: String {
            switch self {
            case .hit: "HIT"
            case .miss: "MISS"
            case .bypass: "BYPASS"
            }
        }
    }

    func lookup(_ key: String, user: UserID, now: Timestamp, context: RequestContext) -> Lookup {
        guard let client else { return .bypass }
        do {
            let generationKey = CacheKeys.generation(of: user)
            let known = knownEpoch.flatMap { known in
                (Int64(0)..<Self.epochRefreshMicroseconds).contains(now.microseconds - known.readAt.microseconds) ? known.reading : nil
            }
            let values = try client.get(many: known == nil ? [key, generationKey] + epochCopies : [key, generationKey])
            let reading = known ?? EpochReading(copies: values.dropFirst(2))
            if known == nil { knownEpoch = (reading, now) }
            // Paused: nobody listens for commits. Unsettled: the listener is writing the copies.
            guard case .current(let epoch) = reading else { return .bypass }
            let generation = try values[1].flatMap(StoredTag.init) ?? create(generationKey, client)
            guard let generation else { return .miss(tags: nil) }
            let entry = values[0].flatMap(CachedView.init(decoding:))
            if let entry, entry.epoch == epoch.tag, entry.generation == generation.tag, entry.isCurrent(at: now) {
                return .hit(entry)
            }
            let position = epoch.walPosition.flatMap { e in generation.walPosition.map { max(e, $0) } }
            return .miss(tags: Tags(epoch: epoch.tag, generation: generation.tag, walPosition: position), stale: entry != nil)
        } catch {
            context.logger.debug("cache lookup failed", metadata: ["error": "\(error)"])
            return .bypass
        }
    }

    /// After a miss: true when this request should compute the view — it now holds the view's
    /// lock, or memcached could not say — and false when another request holds it.
    func lock(_ key: String) -> Bool {
        guard let client else { return true }
        return (try? client.add(CacheKeys.lock(key), value: [0x31], ttlSeconds: Self.lockTTLSeconds)) ?? true
    }

    func unlock(_ key: String) {
        try? client?.delete(CacheKeys.lock(key))
    }

    /// Waits up to `lockWaitMilliseconds` for the entry another request is computing; `nil`
    /// when it did not appear (that request failed, or its entry was already invalidated).
    func waitForEntry(_ key: String, user: UserID, now: Timestamp, context: RequestContext) -> CachedView? {
        var waited = 0
        while waited < Self.lockWaitMilliseconds {
            pause(Self.lockPollMilliseconds)
            waited += Self.lockPollMilliseconds
            switch lookup(key, user: user, now: now, context: context) {
            case .hit(let entry): return entry
            case .bypass: return nil
            case .miss: continue
            }
        }
        return nil
    }

    /// Creates a missing generation (never stored yet, or evicted) with memcached `add`: the new tag,
    /// or `nil` when another writer created one first. Its WAL position is unknown (the user's
    /// last commit may be newer than anything a replica shows) until the listener replaces it.
    private func create(_ key: String, _ client: MemcachedClient) throws(MemcachedError) -> StoredTag? {
        let fresh = StoredTag(tag: .random(), walPosition: nil)
        return try client.add(key, value: fresh.bytes, ttlSeconds: 0) ? fresh : nil
    }

    /// Stores `entry` until the clock would change it, at most `ttlSeconds`; an entry whose
    /// moment has already come is not stored.
    func store(_ key: String, entry: CachedView, now: Timestamp, context: RequestContext) {
        guard let client else { return }
        var ttl = ttlSeconds
        if let changesAt = entry.changesAt {
            let remaining = changesAt.microseconds - now.microseconds
            guard remaining > 0 else { return }
            ttl = min(ttl, Int((remaining + 999_999) / 1_000_000))
        }
        do {
            try client.set(key, value: entry.encoded, ttlSeconds: ttl)
        } catch {
            context.logger.debug("cache store failed", metadata: ["error": "\(error)"])
        }
    }

    /// True when memcached answers (a miss is an answer).
    func ping() -> Bool {
        guard let client else { return false }
        do {
            _ = try client.get("\(CacheKeys.version):health")
            return true
        } catch {
            return false
        }
    }
}
