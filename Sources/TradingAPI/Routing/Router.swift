/// The API's endpoints, before their parameters are read.
public enum Route: Equatable, Sendable {
    case health
    case reconciliationStatus
    case reconciliationLogs
    case openPositions
    /// `{ticket}` as it appeared in the path, validated after authentication.
    case position(ticket: Substring)
    case guardsStatus
}

/// Matches method and path to a route: unknown paths are 404 and wrong methods 405, before
/// any authentication.
public enum Router {
    static let prefix = "/api/v1/"

    public static func route(method: String, path: String) throws(APIError) -> Route {
        guard path.hasPrefix(prefix) else { throw .notFound("no such endpoint") }
        let rest = path.dropFirst(prefix.count)
        let route: Route
        switch rest {
        case "health": route = .health
        case "reconciliation/status": route = .reconciliationStatus
        case "reconciliation/logs": route = .reconciliationLogs
        case "positions/open": route = .openPositions
        case "guards/status": route = .guardsStatus
        default:
            let positions = "positions/"
            guard rest.hasPrefix(positions) else { throw .notFound("no such endpoint") }
            let ticket = rest.dropFirst(positions.count)
            guard !ticket.isEmpty, !ticket.contains("/") else { throw .notFound("no such endpoint") }
            route = .position(ticket: ticket)
        }
        // Every endpoint is read-only; HEAD is answered as GET by nginx's rules for FastCGI.
        guard method == "GET" || method == "HEAD" else { throw .methodNotAllowed(allowed: ["GET", "HEAD"]) }
        return route
    }
}
