import Logging
import Memcached

/// Cache-aside storage of finished views in memcached, per user, view and parameters, that is
/// never stale: an entry is served only while its user's generation and the epoch are the ones it
/// was computed under (`CacheGeneration`) and the clock has not changed it (`CachedView.changesAt`).
///
/// A lookup is one round trip: a multi-get of the entry, the user's generation and the epoch.
/// A hit is the exact bytes a miss produced, so it costs no query and no JSON work. Any memcached
/// failure turns the request into a `BYPASS`: the answer comes from Postgres and is not stored.
public final class ResponseCache {
    private let client: MemcachedClient?
    private let ttlSeconds: Int

    /// `client` nil or `ttlSeconds` 0 turns caching off (every response `BYPASS`). `ttlSeconds`
    /// only bounds how long memcached keeps an entry: freshness comes from the generations.
    public init(client: MemcachedClient?, ttlSeconds: Int) {
        self.client = ttlSeconds > 0 ? client : nil
        self.ttlSeconds = ttlSeconds
    }

    public var isEnabled: Bool { client != nil }

    /// The tags an entry is stored under: those read before its query ran.
    struct Tags: Equatable {
        var epoch: CacheGeneration
        var generation: CacheGeneration
    }

    /// What a lookup found; its `X-Cache` header value says where the answer came from.
    enum Lookup: Equatable {
        case hit(CachedView)
        /// Nothing current: answered from Postgres, then stored under `tags` (not stored when a
        /// tag was missing and another request created it first).
        case miss(tags: Tags?)
        /// Caching is off, memcached could not be reached, or the cache is paused (the supervisor
        /// is not listening for commits): answered from Postgres, not stored.
        case bypass

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
            let values = try client.get(many: [key, generationKey, CacheKeys.epoch])
            if values[2] == CacheKeys.pausedEpoch { return .bypass }  // nobody listens for commits
            let epoch = try values[2].flatMap(CacheGeneration.init) ?? create(CacheKeys.epoch, client)
            let generation = try values[1].flatMap(CacheGeneration.init) ?? create(generationKey, client)
            guard let epoch, let generation else { return .miss(tags: nil) }
            if let entry = values[0].flatMap(CachedView.init(decoding:)), entry.epoch == epoch,
               entry.generation == generation, entry.isCurrent(at: now) {
                return .hit(entry)
            }
            return .miss(tags: Tags(epoch: epoch, generation: generation))
        } catch {
            context.logger.debug("cache lookup failed", metadata: ["error": "\(error)"])
            return .bypass
        }
    }

    /// Creates a missing tag (never stored yet, or evicted) with memcached `add`: the new tag,
    /// or `nil` when another writer created one first.
    private func create(_ key: String, _ client: MemcachedClient) throws(MemcachedError) -> CacheGeneration? {
        let fresh = CacheGeneration.random()
        return try client.add(key, value: Array(fresh.text.utf8), ttlSeconds: 0) ? fresh : nil
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
