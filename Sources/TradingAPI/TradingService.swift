import FoundationEssentials
import Logging
import Postgres

/// The data path of one worker: request → route → auth → cache lookup → query → view → bytes.
///
/// Holds the worker's one Postgres connection and cache client for its life; single-threaded.
public final class TradingService {
    static let retryAfterSeconds = 1

    /// The primary: writes, health, and views the replica cannot answer.
    private let database: PostgresConnection
    /// Where views may be read instead (`DATABASE_READ_URL`); `nil`: the primary only.
    private let replica: ReadReplica?
    private let cache: ResponseCache
    private let authenticator: Authenticator
    private let cursors: CursorCodec
    private let logger: Logger
    private let clock: @Sendable () -> Double
    private let instruments: RequestInstruments
    /// The live stream's look at nginx's nchan publisher; `nil`: no stream (404).
    private let liveStream: StreamProbe?

    /// `clock` returns seconds since the epoch (injectable for tests); it is read once per request.
    /// `keys` verify tokens and (through derived keys) sign log cursors.
    /// `instruments` record what the loop does into the pool's scoreboard (`.none`: nothing).
    /// `liveStream`: answer `GET /api/v1/stream` (else 404), asking nchan's publisher through it.
    /// `replica`: read views from it when it has replayed far enough.
    public init(database: PostgresConnection, replica: ReadReplica? = nil, cache: ResponseCache, keys: JWTKeys,
                logger: Logger, instruments: RequestInstruments = .none, liveStream: StreamProbe? = nil,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.replica = replica
        self.instruments = instruments
        self.liveStream = liveStream
        self.database = database
        self.cache = cache
        self.authenticator = Authenticator(verifier: JWTVerifier(keys: keys))
        self.cursors = CursorCodec(keys: keys)
        self.logger = logger
        self.clock = clock
    }

    /// One unnamed key, `JWT_SECRET_KEY`.
    public convenience init(database: PostgresConnection, cache: ResponseCache, secret: String, logger: Logger,
                            instruments: RequestInstruments = .none,
                            clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.init(database: database, cache: cache, keys: JWTKeys(secret: secret), logger: logger,
                  instruments: instruments, clock: clock)
    }

    public func handle(_ request: APIRequest) -> APIResponse {
        let context = RequestContext(requestID: request.requestID, now: Timestamp(microseconds: Int64(clock() * 1_000_000)),
                                     logger: logger)
        instruments.activity?.begin(method: request.method, path: request.path, requestID: request.requestID,
                                    startedAt: context.now.microseconds)
        var trace = RequestTrace(activity: instruments.activity)
        let response = route(request, context: context, trace: &trace)
        let total = trace.finish()
        let slow = instruments.slowRequestMicroseconds > 0 && total >= instruments.slowRequestMicroseconds
        if slow {
            trace.logSlow(request, status: response.status, totalMicroseconds: total, logger: context.logger)
        }
        instruments.requestFinished(route: trace.route, status: response.status, microseconds: total,
                                    queueWaitMicroseconds: request.queueWaitMicroseconds(now: context.now), slow: slow)
        instruments.activity?.end()
        return response
    }

    private func route(_ request: APIRequest, context: RequestContext, trace: inout RequestTrace) -> APIResponse {
        do throws(APIError) {
            let route = try Router.route(method: request.method, path: request.path)
            trace.route = Router.metricsIndex(of: route)
            switch route {
            case .health:
                return health()
            case .operations(let page):
                return try operations(page, query: request.query, now: context.now)
            case .view(let endpoint, let pathSegment):
                trace.enter(.auth)
                let user = try authenticate(request.authorization, context: context).user
                trace.user = user
                let view = try ViewRequest(endpoint, pathSegment: pathSegment, query: request.query,
                                           context: ParameterContext(user: user, cursors: cursors), now: context.now)
                return try respond(view, ifNoneMatch: request.ifNoneMatch, context: context, trace: &trace)
            case .write(let endpoint):
                trace.enter(.auth)
                let token = try authenticate(request.authorization, context: context)
                trace.user = token.user
                guard token.canWrite else {
                    throw .forbidden("this token may only read; writing needs the \(VerifiedToken.writeScope) scope")
                }
                trace.enter(.query)
                return try write(endpoint, request, writer: token.user, context: context)
            case .stream:
                guard let liveStream else { throw .notFound("the live stream is not enabled on this server") }
                trace.enter(.auth)
                // The header first; a browser's EventSource sends the session cookie instead.
                let authorization = request.authorization ?? request.streamCookie.map { "Bearer " + $0 }
                let token = try authenticate(authorization, context: context)
                trace.user = token.user
                trace.enter(.query)
                return try StreamEndpoint.open(token: token, credentials: StreamEndpoint.credentials(of: authorization),
                                               lastEventID: request.lastEventID, now: Int64(context.nowSeconds),
                                               database: database, probe: liveStream)
            case .session:
                guard liveStream != nil else { throw .notFound("the live stream is not enabled on this server") }
                if request.method == "DELETE" { return StreamSession.close(overTLS: request.overTLS) }
                trace.enter(.auth)
                let token = try authenticate(request.authorization, context: context)
                trace.user = token.user
                return StreamSession.open(token: token, credentials: StreamEndpoint.credentials(of: request.authorization),
                                          now: context.nowSeconds, overTLS: request.overTLS)
            }
        } catch {
            if error.status >= 500 {
                context.logger.warning("request failed", metadata: ["path": "\(request.path)", "status": "\(error.status)"])
            }
            return error.response(requestID: context.requestID)
        }
    }

    private func authenticate(_ authorization: String?, context: RequestContext) throws(APIError) -> VerifiedToken {
        do {
            return try authenticator.authenticate(authorization, now: context.nowSeconds)
        } catch {
            instruments.tokenRejected(error)
            throw .unauthorized(error.message)
        }
    }

    private func respond(_ view: ViewRequest, ifNoneMatch: String?, context: RequestContext,
                         trace: inout RequestTrace) throws(APIError) -> APIResponse {
        trace.enter(.cache)
        let lookup = cache.lookup(view.cacheKey, user: view.user, now: context.now, context: context)
        instruments.cacheLookup(lookup.outcome)
        if case .hit(let entry) = lookup {
            return Self.viewResponse(entry.body, etag: entry.etag, xCache: lookup.xCache, ifNoneMatch: ifNoneMatch)
        }
        var holdsLock = false
        if case .miss(_?, _) = lookup {
            holdsLock = cache.lock(view.cacheKey)
            // The previous holder may have stored the entry between the lookup and the lock.
            if holdsLock, case .hit(let entry) = cache.lookup(view.cacheKey, user: view.user, now: context.now, context: context) {
                cache.unlock(view.cacheKey)
                return Self.viewResponse(entry.body, etag: entry.etag, xCache: "HIT", ifNoneMatch: ifNoneMatch)
            }
            if !holdsLock, let entry = cache.waitForEntry(view.cacheKey, user: view.user, now: context.now, context: context) {
                return Self.viewResponse(entry.body, etag: entry.etag, xCache: "HIT", ifNoneMatch: ifNoneMatch)
            }
        }
        defer { if holdsLock { cache.unlock(view.cacheKey) } }
        trace.enter(.query)
        let databaseTimeBefore = databaseMicroseconds
        let rendered: RenderedView?
        do {
            let tags: ResponseCache.Tags? = if case .miss(let tags?, _) = lookup { tags } else { nil }
            rendered = try render(view, needing: tags?.walPosition, context: context)
        } catch {
            throw mapDatabaseError(error, context: context)
        }
        let queried = databaseMicroseconds - databaseTimeBefore
        trace.enter(.cache)
        trace.splitQuery(databaseMicroseconds: queried)
        instruments.queried(microseconds: queried)
        guard let rendered else { throw .notFound("no such position") }
        let etag = CachedView.etag(of: rendered.body)
        if case .miss(let tags?, _) = lookup {
            let entry = CachedView(epoch: tags.epoch, generation: tags.generation, changesAt: rendered.changesAt,
                                   etag: etag, body: rendered.body)
            cache.store(view.cacheKey, entry: entry, now: context.now, context: context)
        }
        return Self.viewResponse(rendered.body, etag: etag, xCache: lookup.xCache, ifNoneMatch: ifNoneMatch)
    }

    /// Runs the view's query on the replica when it has replayed as far as `position` (the tags'
    /// WAL position: an entry stored from it is never older than the invalidation it answers),
    /// else on the primary; any failure on the replica runs it again on the primary.
    private func render(_ view: ViewRequest, needing position: UInt64?, context: RequestContext) throws(PostgresError) -> RenderedView? {
        if let replica, let connection = replica.connection(needing: position, context: context) {
            let session = replica.session
            do {
                let rendered = try view.render(from: connection)
                if replica.isSameSession(session) { return rendered }  // else: an unmeasured session answered
            } catch {
                replica.failed(error, context: context)
            }
        }
        return try view.render(from: database)
    }

    private var databaseMicroseconds: UInt64 {
        database.executionMicroseconds + (replica?.executionMicroseconds ?? 0)
    }

    /// 200 with the body, or 304 without one when the client holds the current tag. Browsers
    /// may keep a view but must revalidate it each time (`private, no-cache`).
    static func viewResponse(_ body: [UInt8], etag: String, xCache: String, ifNoneMatch: String?) -> APIResponse {
        let headers = [("X-Cache", xCache), ("ETag", etag), ("Cache-Control", "private, no-cache")]
        if let ifNoneMatch, EntityTag.list(ifNoneMatch, matches: etag) {
            return APIResponse(status: 304, headers: headers, body: [])
        }
        return APIResponse(status: 200, headers: headers, body: body)
    }

    /// Decodes and validates the whole batch, then writes it in one transaction, or replays the
    /// stored answer of its `Idempotency-Key`. 201 with the endpoint's body.
    private func write<E: WriteEndpoint>(_ endpoint: E.Type, _ request: APIRequest, writer: UserID,
                                         context: RequestContext) throws(APIError) -> APIResponse {
        if let declared = request.declaredBodyLength, declared > APIRequest.maximumBodyBytes {
            throw .payloadTooLarge(limitBytes: APIRequest.maximumBodyBytes)
        }
        if let type = request.contentType, !type.isEmpty,
           type.split(separator: ";").first?.filter({ $0 != " " && $0 != "\t" }).lowercased() != "application/json" {
            throw .unsupportedMediaType
        }
        let key = try IdempotencyKey(header: request.idempotencyKey)
        let batch = try E.decode(request.body, requestID: context.requestID)
        let fingerprint = key.map { _ in IdempotencyKey.fingerprint(path: E.path, body: request.body) }
        let written: Written
        do {
            written = try database.transaction { () throws(WriteError) -> Written in
                if let key, let stored = try key.stored(writer: writer, database: database) {
                    return .replayed(stored.fingerprint, stored.body)
                }
                let body = try E.write(batch, database: database)
                if let key, let fingerprint, !(try key.store(writer: writer, fingerprint: fingerprint, body: body, database: database)) {
                    throw .raced
                }
                return .written(body)
            }
        } catch {
            switch error {
            case .body(.raced):
                // Another request with the key committed first; this transaction was rolled back.
                written = try replay(key, writer: writer, context: context)
            case .body(let error):
                throw map(error, context: context)
            case .database(let error):
                throw mapDatabaseError(error, context: context)
            }
        }
        switch written {
        case .written(let body):
            return APIResponse(status: 201, headers: [("Cache-Control", "no-store")], body: body)
        case .replayed(let storedFingerprint, let body):
            guard storedFingerprint == fingerprint else {
                throw .conflict("Idempotency-Key was already used with another request")
            }
            return APIResponse(status: 201, headers: [("Cache-Control", "no-store"), ("Idempotent-Replayed", "true")],
                               body: Array(body.utf8))
        }
    }

    private func replay(_ key: IdempotencyKey?, writer: UserID, context: RequestContext) throws(APIError) -> Written {
        let stored: (fingerprint: String, body: String)?
        do {
            stored = try key?.stored(writer: writer, database: database)
        } catch {
            throw map(error, context: context)
        }
        guard let stored else { throw .internalError }
        return .replayed(stored.fingerprint, stored.body)
    }

    /// What a write transaction did.
    private enum Written {
        case written([UInt8])
        /// The key's stored answer: the fingerprint of its request and its body.
        case replayed(String, String)
    }

    private func map(_ error: WriteError, context: RequestContext) -> APIError {
        switch error {
        case .rejected(let apiError): apiError
        case .database(let databaseError): mapDatabaseError(databaseError, context: context)
        case .raced: .internalError
        }
    }

    private func mapDatabaseError(_ error: PostgresError, context: RequestContext) -> APIError {
        instruments.queryFailed(error.isUnavailable ? .unavailable : .failed)
        if error.isUnavailable {
            context.logger.warning("database unavailable", metadata: ["error": "\(error)"])
            return .unavailable(retryAfterSeconds: Self.retryAfterSeconds)
        }
        context.logger.error("query failed", metadata: ["error": "\(error)"])
        return .internalError
    }

    /// `/metrics` or `/status`, read from the pool's scoreboard; 503 without one.
    private func operations(_ page: OperationsPage, query: String, now: Timestamp) throws(APIError) -> APIResponse {
        guard let scoreboard = instruments.scoreboard else { throw .unavailable(retryAfterSeconds: Self.retryAfterSeconds) }
        let reading = PoolReading(scoreboard: scoreboard, listenQueue: instruments.listenQueue())
        switch page {
        case .metrics:
            return APIResponse(status: 200, headers: [("Cache-Control", "no-store")], body: MetricsPage(reading: reading).render(),
                               contentType: MetricsPage.contentType)
        case .status:
            return PoolStatusPage(reading: reading, now: now).render(json: QueryParameters(query)["json"] != nil)
        }
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
