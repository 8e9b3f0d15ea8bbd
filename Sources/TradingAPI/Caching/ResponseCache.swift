import Logging
import Memcached

/// Cache-aside storage of finished response bodies in memcached, per user, view and parameters.
///
/// A hit is the exact bytes a miss produced, so it costs no query and no JSON work. Keys are
/// `ta1:<view>:<user uuid>[:<validated parameters>]`, built only from the verified token's
/// user and values the views validated, so two users or two views can never share one. Any
/// memcached failure turns the request into a `BYPASS`: the answer comes from Postgres and is
/// not stored.
public final class ResponseCache {
    /// Bumped when the format of a cached body changes, so old entries are never served.
    static let keyVersion = "ta1"

    private let client: MemcachedClient?
    private let ttlSeconds: Int

    /// `client` nil or `ttlSeconds` 0 turns caching off (every response `BYPASS`).
    public init(client: MemcachedClient?, ttlSeconds: Int) {
        self.client = ttlSeconds > 0 ? client : nil
        self.ttlSeconds = ttlSeconds
    }

    public var isEnabled: Bool { client != nil }

    static func key(view: String, user: UserID, parameters: String = "") -> String {
        parameters.isEmpty ? "\(keyVersion):\(view):\(user.uuid)" : "\(keyVersion):\(view):\(user.uuid):\(parameters)"
    }

    /// What a lookup found; its `X-Cache` header value says where the answer came from.
    enum Lookup {
        case hit([UInt8])
        /// Not cached: answered from Postgres, then stored.
        case miss
        /// Caching is off, or memcached could not be reached: answered from Postgres, not stored.
        case bypass

        var xCache: String {
            switch self {
            case .hit: "HIT"
            case .miss: "MISS"
            case .bypass: "BYPASS"
            }
        }
    }

    func lookup(_ key: String, context: RequestContext) -> Lookup {
        guard let client else { return .bypass }
        do {
            return try client.get(key).map(Lookup.hit) ?? .miss
        } catch {
            context.logger.debug("cache lookup failed", metadata: ["error": "\(error)"])
            return .bypass
        }
    }

    func store(_ key: String, body: [UInt8], context: RequestContext) {
        guard let client else { return }
        do {
            try client.set(key, value: body, ttlSeconds: ttlSeconds)
        } catch {
            context.logger.debug("cache store failed", metadata: ["error": "\(error)"])
        }
    }

    /// True when memcached answers (a miss is an answer).
    func ping() -> Bool {
        guard let client else { return false }
        do {
            _ = try client.get("\(Self.keyVersion):health")
            return true
        } catch {
            return false
        }
    }
}
