import Postgres

/// One view endpoint of the API: its path, how it reads its parameters, its cache key and how it
/// renders. Each view conforms in its own file; `Endpoints.all` is the table the router reads.
protocol Endpoint: SendableMetatype {
    /// The validated parameters.
    associatedtype Parameters: Sendable

    /// The path under `/api/v1/`; a last segment `{ticket}` matches any one non-empty segment,
    /// which `parameters` reads (after authentication, so a bad ticket is 401 before it is 400).
    static var path: String { get }
    /// The view's name in cache keys: `ta3:<name>:<user>[:<parameters>]` (`CacheKeys.view`).
    static var cacheName: String { get }
    /// Reads and validates the query string and the path's `{ticket}` segment (`nil` without one).
    /// Throws 400 `invalid_parameter` on bad input; unknown query parameters are ignored.
    static func parameters(query: QueryParameters, pathSegment: Substring?, context: ParameterContext) throws(APIError) -> Parameters
    /// The validated parameters as they enter the cache key: "" when there are none. Unknown
    /// parameters never do, so they share the entry.
    static func cacheKeyPart(_ parameters: Parameters) -> String
    /// Queries and renders the view, or `nil` when the thing asked for is not the user's (404).
    /// `now` is the request's one reading of the clock.
    static func render(_ parameters: Parameters, context: ParameterContext, now: Timestamp,
                       database: PostgresConnection) throws(PostgresError) -> RenderedView?
}

/// A view's JSON body, and when the clock alone would change it (`nil`: only a write can).
struct RenderedView: Equatable {
    var body: [UInt8]
    var changesAt: Timestamp?
}


/// What reading a view's parameters may need beyond the request: whose they are (a log cursor
/// is valid only for the user it was issued to) and the codec that signs cursors.
struct ParameterContext {
    let user: UserID
    let cursors: CursorCodec
}

extension Endpoint where Parameters == Void {
    static func parameters(query: QueryParameters, pathSegment: Substring?, context: ParameterContext) throws(APIError) {}
    static func cacheKeyPart(_ parameters: Void) -> String { "" }
}

/// The API's view endpoints. The router matches every exact path before any `{ticket}` path.
enum Endpoints {
    static let all: [any Endpoint.Type] = [
        ReconciliationStatusView.self,
        ReconciliationLogsView.self,
        OpenPositionsView.self,
        PositionView.self,
        GuardsStatusView.self,
    ]
}

/// An authenticated request for one view: the endpoint with its validated parameters, ready to
/// be looked up in the cache and rendered.
struct ViewRequest {
    /// The memcached key: view, user and validated parameters only.
    let cacheKey: String
    let user: UserID
    private let renderBody: (PostgresConnection) throws(PostgresError) -> RenderedView?

    /// Throws 400 when the parameters are invalid.
    init<E: Endpoint>(_ endpoint: E.Type, pathSegment: Substring?, query: String, context: ParameterContext,
                      now: Timestamp) throws(APIError) {
        let parameters = try E.parameters(query: QueryParameters(query), pathSegment: pathSegment, context: context)
        cacheKey = CacheKeys.view(E.cacheName, user: context.user, parameters: E.cacheKeyPart(parameters))
        user = context.user
        renderBody = { database throws(PostgresError) in
            try E.render(parameters, context: context, now: now, database: database)
        }
    }

    /// The view, or `nil` when the thing asked for is not the user's.
    func render(from database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        try renderBody(database)
    }
}
