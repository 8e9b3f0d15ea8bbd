/// An endpoint matched by method and path, before its parameters are read.
enum Route: Equatable {
    /// `GET /api/v1/health`: no token, no cache.
    case health
    /// A view; `pathSegment` is what stood for `{ticket}` in the path, still unvalidated.
    case view(any Endpoint.Type, pathSegment: Substring?)
    /// A batch write (`POST`).
    case write(any WriteEndpoint.Type)

    static func == (lhs: Route, rhs: Route) -> Bool {
        switch (lhs, rhs) {
        case (.health, .health):
            return true
        case (.view(let left, let leftSegment), .view(let right, let rightSegment)):
            return ObjectIdentifier(left) == ObjectIdentifier(right) && leftSegment == rightSegment
        case (.write(let left), .write(let right)):
            return ObjectIdentifier(left) == ObjectIdentifier(right)
        default:
            return false
        }
    }

    /// The methods the route answers; others are 405 with `Allow`.
    var allowedMethods: [String] {
        switch self {
        case .health, .view: ["GET", "HEAD"]
        case .write: ["POST"]
        }
    }
}

/// Matches method and path against `Endpoints.all` and `WriteEndpoints.all`: unknown paths are
/// 404 and wrong methods 405, before any authentication.
enum Router {
    static let prefix = "/api/v1/"
    static let healthPath = "health"
    static let segmentParameter = "{ticket}"

    /// `Endpoints.all` split once: the exact paths, and the parents of the `…/{ticket}` paths.
    private static let exactPaths = Endpoints.all.filter { !$0.path.hasSuffix("/" + segmentParameter) }
    private static let segmentPaths = Endpoints.all.compactMap { endpoint -> (parent: Substring, endpoint: any Endpoint.Type)? in
        endpoint.path.hasSuffix("/" + segmentParameter) ? (endpoint.path.dropLast(segmentParameter.count), endpoint) : nil
    }

    static func route(method: String, path: String) throws(APIError) -> Route {
        guard path.hasPrefix(prefix) else { throw .notFound("no such endpoint") }
        guard let route = match(path.dropFirst(prefix.count)) else { throw .notFound("no such endpoint") }
        // HEAD is answered as GET by nginx's rules for FastCGI.
        guard route.allowedMethods.contains(method) else { throw .methodNotAllowed(allowed: route.allowedMethods) }
        return route
    }

    private static func match(_ rest: Substring) -> Route? {
        if rest == healthPath { return .health }
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
