import Postgres

/// An authenticated request for one view with its validated parameters.
enum ViewRequest: Equatable {
    case reconciliationStatus
    case reconciliationLogs(ReconciliationLogsView.Query)
    case openPositions(symbol: String?)
    case position(ticket: Int64)
    case guardsStatus

    /// Reads and validates the route's parameters (400 on bad input); `nil` for the health check.
    init?(route: Route, query: String) throws(APIError) {
        switch route {
        case .health: return nil
        case .reconciliationStatus: self = .reconciliationStatus
        case .reconciliationLogs: self = .reconciliationLogs(try ReconciliationLogsView.Query(QueryParameters(query)))
        case .openPositions: self = .openPositions(symbol: try PositionsView.symbolFilter(QueryParameters(query)))
        case .position(let ticket): self = .position(ticket: try PositionsView.ticket(ticket))
        case .guardsStatus: self = .guardsStatus
        }
    }

    /// The memcached key: view and validated parameters only, so unknown parameters share it.
    func cacheKey(user: UserID) -> String {
        switch self {
        case .reconciliationStatus: ResponseCache.key(view: "status", user: user)
        case .reconciliationLogs(let query): ResponseCache.key(view: "logs", user: user, parameters: "h\(query.hours):l\(query.limit)")
        case .openPositions(let symbol): ResponseCache.key(view: "open", user: user, parameters: symbol.map { "s\($0)" } ?? "all")
        case .position(let ticket): ResponseCache.key(view: "position", user: user, parameters: String(ticket))
        case .guardsStatus: ResponseCache.key(view: "guards", user: user)
        }
    }

    /// Queries and renders the view; `nil` when the thing asked for is not the user's.
    func render(user: UserID, database: PostgresConnection, now: Timestamp) throws(PostgresError) -> [UInt8]? {
        switch self {
        case .reconciliationStatus:
            return ReconciliationStatusView.render(try ReconciliationStatusView.load(user: user, from: database), user: user)
        case .reconciliationLogs(let query):
            let events = try ReconciliationLogsView.load(user: user, query: query, from: database)
            return ReconciliationLogsView.render(events, query: query, user: user)
        case .openPositions(let symbol):
            return PositionsView.render(try PositionsView.loadOpen(user: user, symbol: symbol, from: database), user: user)
        case .position(let ticket):
            return try PositionsView.loadOne(user: user, ticket: ticket, from: database).map(PositionsView.render)
        case .guardsStatus:
            return GuardsStatusView.render(try GuardsStatusView.load(user: user, from: database), user: user, evaluatedAt: now)
        }
    }
}
