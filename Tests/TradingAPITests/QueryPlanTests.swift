import Postgres
import Testing
@testable import TradingAPI

#if canImport(Glibc)
import Glibc
#endif

let planDatabaseURL = getenv("DATABASE_URL").map { String(cString: $0) }

/// Every view's statement must be served from an index on the caller's rows: with sequential
/// scans priced out, a plan that still scans a table would mean no index can serve it.
@Suite(.enabled(if: planDatabaseURL != nil, "needs DATABASE_URL with the migrations applied (make test)"))
struct QueryPlanTests {
    static let user = "00000000-0000-4000-8000-0000000000ff"

    static let statements: [(PreparedStatement, [String?])] = [
        (ReconciliationStatusView.statement, [user]),
        (ReconciliationLogsView.window, [user, "24", "100"]),
        (PositionsView.open, [user, nil]),
        (PositionsView.open, [user, "XAUUSD"]),
        (PositionsView.one, [user, "12345"]),
        (GuardsStatusView.statement, [user]),
    ]

    @Test(arguments: statements.indices)
    func statementUsesIndexesOnly(_ index: Int) throws {
        let (statement, parameters) = Self.statements[index]
        let database = PostgresConnection(configuration: .init(url: planDatabaseURL!))
        _ = try database.execute(PreparedStatement(name: "plan_no_seqscan", sql: "SELECT set_config('enable_seqscan', 'off', false)"), [])
        let explain = PreparedStatement(name: "explain_\(statement.name)", sql: "EXPLAIN " + statement.sql)
        let result = try database.execute(explain, parameters)
        let plan = (0..<result.rowCount).compactMap { result.string($0, 0) }.joined(separator: "\n")
        #expect(!plan.contains("Seq Scan on reconciliation_logs"), "\(statement.name):\n\(plan)")
        #expect(!plan.contains("Seq Scan on position_state"), "\(statement.name):\n\(plan)")
        #expect(!plan.contains("Seq Scan on equity_snapshots"), "\(statement.name):\n\(plan)")
        #expect(plan.contains("Index"), "\(statement.name):\n\(plan)")
    }
}
