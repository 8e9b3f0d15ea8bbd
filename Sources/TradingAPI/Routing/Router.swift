/// An endpoint matched by method and path, before its parameters are read.
enum Route: Equatable {
    /// `GET /api/v1/health`: no token, no cache.
    case health
    /// A view; `pathSegment` is what stood for `{ticket}` in the path, still unvalidated.
    case view(any Endpoint.Type, pathSegment: Substring?)

    static func == (lhs: Route, rhs: Route) -> Bool {
        switch (lhs, rhs) {
        case (.health, .health):
            return true
        case (.view(let left, let leftSegment), .view(let right, let rightSegment)):
            return ObjectIdentifier(left) == ObjectIdentifier(right) && leftSegment == rightSegment
        default:
            return false
        }
    }
}

/// Matches method and path against `Endpoints.all`: unknown paths are 404 and wrong methods 405,
/// before any authentication.
enum Router {
    static let prefix = "/api/v1/"
    static let healthPath = "health"
    static let segmentParameter = "{ticket}"

    static func route(method: String, path: String) throws(APIError) -> Route {
        guard path.hasPrefix(prefix) else { throw .notFound("no such endpoint") }
        guard let route = match(path.dropFirst(prefix.count)) else { throw .notFound("no such endpoint") }
        // Every endpoint is read-only; HEAD is answered as GET by nginx's rules for FastCGI.
        guard method == "GET" || method == "HEAD" else { throw .methodNotAllowed(allowed: ["GET", "HEAD"]) }
        return route
    }

    private static func match(_ rest: Substring) -> Route? {
        if rest == healthPath { return .health }
        if let endpoint = Endpoints.all.first(where: { rest == $0.path && !$0.path.hasSuffix(segmentParameter) }) {
            return .view(endpoint, pathSegment: nil)
        }
        for endpoint in Endpoints.all where endpoint.path.hasSuffix("/" + segmentParameter) {
            let parent = endpoint.path.dropLast(segmentParameter.count)
            guard rest.hasPrefix(parent) else { continue }
            let segment = rest.dropFirst(parent.count)
            if !segment.isEmpty, !segment.contains("/") { return .view(endpoint, pathSegment: segment) }
        }
        return nil
    }
}
