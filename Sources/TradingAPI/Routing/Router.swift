/// The pool's operations pages, outside the API (nginx: `location = /metrics`, `= /status`).
enum OperationsPage: String, Sendable {
    /// Prometheus text format (`MetricsPage`).
    case metrics = "/metrics"
    /// php-fpm's status page (`PoolStatusPage`).
    case status = "/status"

    var path: String { rawValue }
}

/// An endpoint matched by method and path, before its parameters are read.
enum Route: Equatable {
    /// `GET /api/v1/health`: no token, no cache.
    case health
    /// A view; `pathSegment` is what stood for `{ticket}` in the path, still unvalidated.
    case view(any Endpoint.Type, pathSegment: Substring?)
    /// A batch write (`POST`).
    case write(any WriteEndpoint.Type)
    /// `/metrics` or `/status`: no token; nginx lets only allow-listed addresses reach them.
    case operations(OperationsPage)
    /// `GET /api/v1/stream`: the live stream, handed to nginx (`StreamEndpoint`).
    case stream
    /// `POST`/`DELETE /api/v1/session`: the stream's cookie for browsers (`StreamSession`).
    case session

    static func == (lhs: Route, rhs: Route) -> Bool {
        switch (lhs, rhs) {
        case (.health, .health):
            return true
        case (.view(let left, let leftSegment), .view(let right, let rightSegment)):
            return ObjectIdentifier(left) == ObjectIdentifier(right) && leftSegment == rightSegment
        case (.write(let left), .write(let right)):
            return ObjectIdentifier(left) == ObjectIdentifier(right)
        case (.operations(let left), .operations(let right)):
            return left == right
        case (.stream, .stream), (.session, .session):
            return true
        default:
            return false
        }
    }

    /// The methods the route answers; others are 405 with `Allow`.
    var allowedMethods: [String] {
        switch self {
        case .health, .view, .operations: ["GET", "HEAD"]
        case .stream: ["GET"]
        case .session: ["POST", "DELETE"]
        case .write: ["POST"]
        }
    }
}

/// Matches method and path against `Endpoints.all` and `WriteEndpoints.all`: unknown paths are
/// 404 and wrong methods 405, before any authentication.
enum Router {
    static let prefix = "/api/v1/"
    static let healthPath = "health"
    static let streamPath = "stream"
    static let sessionPath = "session"
    static let segmentParameter = "{ticket}"

    /// `Endpoints.all` split once: the exact paths, and the parents of the `…/{ticket}` paths.
    private static let exactPaths = Endpoints.all.filter { !$0.path.hasSuffix("/" + segmentParameter) }
    private static let segmentPaths = Endpoints.all.compactMap { endpoint -> (parent: Substring, endpoint: any Endpoint.Type)? in
        endpoint.path.hasSuffix("/" + segmentParameter) ? (endpoint.path.dropLast(segmentParameter.count), endpoint) : nil
    }

    static func route(method: String, path: String) throws(APIError) -> Route {
        let route: Route
        if path.hasPrefix(prefix) {
            guard let matched = match(path.dropFirst(prefix.count)) else { throw .notFound("no such endpoint") }
            route = matched
        } else {
            guard let page = OperationsPage(rawValue: path) else { throw .notFound("no such endpoint") }
            route = .operations(page)
        }
        // HEAD is answered as GET by nginx's rules for FastCGI.
        guard route.allowedMethods.contains(method) else { throw .methodNotAllowed(allowed: route.allowedMethods) }
        return route
    }

    /// The route's position in `MetricsLayout.routes` (its `route` label).
    static func metricsIndex(of route: Route) -> Int {
        switch route {
        case .health:
            return 0
        case .view(let endpoint, _):
            return 1 + Endpoints.all.firstIndex { ObjectIdentifier($0) == ObjectIdentifier(endpoint) }!
        case .write(let endpoint):
            return 1 + Endpoints.all.count + WriteEndpoints.all.firstIndex { ObjectIdentifier($0) == ObjectIdentifier(endpoint) }!
        case .operations(let page):
            return 1 + Endpoints.all.count + WriteEndpoints.all.count + (page == .metrics ? 0 : 1)
        case .stream:
            return 3 + Endpoints.all.count + WriteEndpoints.all.count
        case .session:
            return 4 + Endpoints.all.count + WriteEndpoints.all.count
        }
    }

    private static func match(_ rest: Substring) -> Route? {
        if rest == healthPath { return .health }
        if rest == streamPath { return .stream }
        if rest == sessionPath { return .session }
        if let endpoint = WriteEndpoints.all.first(where: { rest == $0.path }) { return .write(endpoint) }
        if let endpoint = exactPaths.first(where: { rest == $0.path }) {
            return .view(endpoint, pathSegment: nil)
        }
        for (parent, endpoint) in segmentPaths where rest.hasPrefix(parent) {
            let segment = rest.dropFirst(parent.count)
            if !segment.isEmpty, !segment.contains("/") { return .view(endpoint, pathSegment: segment) }
        }
        return nil
    }
}
