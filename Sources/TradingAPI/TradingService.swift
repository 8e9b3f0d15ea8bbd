import FoundationEssentials
import Logging
import Postgres

/// The data path of one worker: request → route → auth → cache lookup → query → view → bytes.
///
/// Holds the worker's one Postgres connection and cache client for its life; single-threaded.
public final class TradingService {
    static let retryAfterSeconds = 1

    private let database: PostgresConnection
    private let cache: ResponseCache
    private let authenticator: Authenticator
    private let logger: Logger
    private let clock: @Sendable () -> Double

    /// `clock` returns seconds since the epoch (injectable for tests).
    public init(database: PostgresConnection, cache: ResponseCache, verifier: JWTVerifier, logger: Logger,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.database = database
        self.cache = cache
        self.authenticator = Authenticator(verifier: verifier)
        self.logger = logger
        self.clock = clock
    }

    public func handle(_ request: APIRequest) -> APIResponse {
        do {
            let route = try Router.route(method: request.method, path: request.path)
            if route == .health { return health() }
            let now = clock()
            let user = try authenticate(request.authorization, now: now)
            guard let view = try ViewRequest(route: route, query: request.query) else { return health() }
            return try respond(view, user: user, request: request, now: now)
        } catch {
            if error.status >= 500 {
                logger.warning("request failed", metadata: ["request_id": "\(request.requestID)", "path": "\(request.path)", "status": "\(error.status)"])
            }
            return error.response(requestID: request.requestID)
        }
    }

    private func authenticate(_ authorization: String?, now: Double) throws(APIError) -> UserID {
        do {
            return try authenticator.authenticate(authorization, now: now)
        } catch {
            throw .unauthorized(error.message)
        }
    }

    private func respond(_ view: ViewRequest, user: UserID, request: APIRequest, now: Double) throws(APIError) -> APIResponse {
        let key = view.cacheKey(user: user)
        let lookup = cache.lookup(key, requestID: request.requestID)
        if case .hit(let body) = lookup {
            return APIResponse(status: 200, headers: [("X-Cache", CacheOutcome.hit.rawValue)], body: body)
        }
        let body: [UInt8]?
        do {
            body = try view.render(user: user, database: database, now: Timestamp(microseconds: Int64(now * 1_000_000)))
        } catch {
            throw mapDatabaseError(error, request: request)
        }
        guard let body else { throw .notFound("no such position") }
        let outcome: CacheOutcome
        if case .miss = lookup {
            cache.store(key, body: body, requestID: request.requestID)
            outcome = .miss
        } else {
            outcome = .bypass
        }
        return APIResponse(status: 200, headers: [("X-Cache", outcome.rawValue)], body: body)
    }

    private func mapDatabaseError(_ error: PostgresError, request: APIRequest) -> APIError {
        let metadata: Logger.Metadata = ["request_id": "\(request.requestID)", "error": "\(error)"]
        if error.isUnavailable {
            logger.warning("database unavailable", metadata: metadata)
            return .unavailable(retryAfterSeconds: Self.retryAfterSeconds)
        }
        logger.error("query failed", metadata: metadata)
        return .internalError
    }

    static let ping = PreparedStatement(name: "health_ping", sql: "SELECT 1")

    /// `{"status","database","cache"}`: 200 while Postgres answers, 503 otherwise.
    private func health() -> APIResponse {
        let databaseUp = (try? database.execute(Self.ping, [])) != nil
        let cacheState = !cache.isEnabled ? "disabled" : (cache.ping() ? "ok" : "unavailable")
        var json = JSONWriter(capacity: 64)
        json.object { json in
            json.field("status", databaseUp ? "ok" : "unavailable")
            json.field("database", databaseUp ? "ok" : "unavailable")
            json.field("cache", cacheState)
        }
        let headers = databaseUp ? [] : [("Retry-After", String(Self.retryAfterSeconds))]
        return APIResponse(status: databaseUp ? 200 : 503, headers: headers, body: json.bytes)
    }
}
