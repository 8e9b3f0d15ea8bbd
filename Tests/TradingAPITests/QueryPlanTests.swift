import Postgres
import Testing
@testable import TradingAPI

#if canImport(Glibc)
import Glibc
#endif

let planDatabaseURL = getenv("DATABASE_URL").map { String(cString: $0) }

/// Every view's statement against the real schema (make test's Postgres, migrations applied).
@Suite(.enabled(if: planDatabaseURL != nil, "needs DATABASE_URL with the migrations applied (make test)"))
struct QueryPlanTests {
    static let user = "00000000-0000-4000-8000-0000000000ff"
    static let now = Timestamp(microseconds: 0)

    /// Each statement with its parameters and the decoder its view reads the result with.
    static let statements: [(PreparedStatement, [String?], @Sendable (PostgresResult) throws(PostgresError) -> Void)] = [
        (ReconciliationStatusView.statement, [user], { result throws(PostgresError) in _ = try ReconciliationStatusView.decode(result, now: now) }),
        (ReconciliationLogsView.window, [user, "24", "100"], { result throws(PostgresError) in _ = try ReconciliationLogsView.decode(result) }),
        (ReconciliationLogsView.windowAfter, [user, "24", "100", "2025-10-26T12:34:56.123456Z", "0b8f6a52-1a7b-4c59-9a34-7d6a3e2f1c00"],
         { result throws(PostgresError) in _ = try ReconciliationLogsView.decode(result) }),
        (OpenPositionsView.statement, [user, nil], { result throws(PostgresError) in _ = try OpenPositionsView.decode(result) }),
        (OpenPositionsView.statement, [user, "XAUUSD"], { result throws(PostgresError) in _ = try OpenPositionsView.decode(result) }),
        (PositionView.statement, [user, "12345"], { result throws(PostgresError) in _ = try PositionView.decode(result) }),
        (GuardsStatusView.statement, [user], { result throws(PostgresError) in _ = try GuardsStatusView.decode(result) }),
    ]

    /// Served from an index on the caller's rows: with sequential scans priced out, a plan that
    /// still scans a table would mean no index can serve it.
    @Test(arguments: statements.indices)
    func statementUsesIndexesOnly(_ index: Int) throws {
        let (statement, parameters, _) = Self.statements[index]
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

    /// The select list and the decoder agree: every column the decoder reads by name is in the
    /// result, and no two result columns share a name (the first would shadow the second).
    @Test(arguments: statements.indices)
    func decoderFindsEveryColumnByName(_ index: Int) throws {
        let (statement, parameters, decode) = Self.statements[index]
        let database = PostgresConnection(configuration: .init(url: planDatabaseURL!))
        let result = try database.execute(statement, parameters)
        try decode(result)
        #expect(Set(result.columnNames).count == result.columnCount, "\(statement.name): \(result.columnNames)")
    }
}
