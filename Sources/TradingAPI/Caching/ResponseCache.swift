import Logging
import Memcached

/// Cache-aside storage of finished response bodies in memcached, per user, view and parameters.
///
/// A hit is the exact bytes a miss produced, so it costs no query and no JSON work. Keys are
/// `ta1:<view>:<user uuid>[:<validated parameters>]`, built only from the verified token's
/// user and values the views validated, so two users or two views can never share one. Any memcached failure turns the request into a
/// `BYPASS`: the answer comes from Postgres and is not stored.
public final class ResponseCache {
    /// Bumped when the format of a cached body changes, so old entries are never served.
    static let keyVersion = "ta1"

    private let client: MemcachedClient?
    private let ttlSeconds: Int
    private let logger: Logger

    /// `client` nil or `ttlSeconds` 0 turns caching off (every response `BYPASS`).
    public init(client: MemcachedClient?, ttlSeconds: Int, logger: Logger) {
        self.client = ttlSeconds > 0 ? client : nil
        self.ttlSeconds = ttlSeconds
        self.logger = logger
    }

    public var isEnabled: Bool { client != nil }

    public static func key(view: String, user: UserID, parameters: String = "") -> String {
        parameters.isEmpty ? "\(keyVersion):\(view):\(user.uuid)" : "\(keyVersion):\(view):\(user.uuid):\(parameters)"
    }

    public enum Lookup {
        case hit([UInt8])
        case miss
        case bypass
    }

    public func lookup(_ key: String, requestID: String) -> Lookup {
        guard let client else { return .bypass }
        do {
            return try client.get(key).map(Lookup.hit) ?? .miss
        } catch {
            logger.debug("cache lookup failed", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            return .bypass
        }
    }

    public func store(_ key: String, body: [UInt8], requestID: String) {
        guard let client else { return }
        do {
            try client.set(key, value: body, ttlSeconds: ttlSeconds)
        } catch {
            logger.debug("cache store failed", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
        }
    }

    /// True when memcached answers (a miss is an answer).
    public func ping() -> Bool {
        guard let client else { return false }
        do {
            _ = try client.get("\(Self.keyVersion):health")
            return true
        } catch {
            return false
        }
    }
}
