import Postgres
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs against the real Postgres of the test stack (`make test` sets DATABASE_URL).
let databaseURL = getenv("DATABASE_URL").map { String(cString: $0) }

@Suite(.enabled(if: databaseURL != nil, "needs DATABASE_URL (make test starts a Postgres)"))
struct PostgresConnectionTests {
    func connection(statementTimeoutMilliseconds: Int = 2000) -> PostgresConnection {
        PostgresConnection(configuration: .init(url: databaseURL!, statementTimeoutMilliseconds: statementTimeoutMilliseconds))
    }

    @Test func runsPreparedStatementsWithTypedColumns() throws {
        let statement = PreparedStatement(name: "test_types", sql: "SELECT $1::int8, $2::float8, $3::text, NULL::text, true, $4::text IS NULL")
        let result = try connection().execute(statement, ["42", "1950.5", "héllo", nil])
        #expect(result.rowCount == 1 && result.columnCount == 6)
        #expect(result.int(0, 0) == 42)
        #expect(result.double(0, 1) == 1950.5)
        #expect(result.string(0, 2) == "héllo")
        #expect(result.string(0, 3) == nil && result.isNull(0, 3))
        #expect(result.bool(0, 4) == true && result.bool(0, 5) == true)
    }

    @Test func parametersAreNeverSQL() throws {
        let statement = PreparedStatement(name: "test_injection", sql: "SELECT $1::text")
        let hostile = "'; DROP TABLE users; --"
        #expect(try connection().execute(statement, [hostile]).string(0, 0) == hostile)
    }

    @Test func preparesOncePerConnectionAndReusesIt() throws {
        let database = connection()
        let statement = PreparedStatement(name: "test_reuse", sql: "SELECT count(*) FROM pg_prepared_statements WHERE name = 'test_reuse'")
        #expect(try database.execute(statement, []).int(0, 0) == 1)
        #expect(try database.execute(statement, []).int(0, 0) == 1)
    }

    @Test func reportsQueryErrorsWithSQLState() {
        let statement = PreparedStatement(name: "test_error", sql: "SELECT 1 / $1::int")
        #expect(throws: PostgresError.queryFailed(statement: "test_error", sqlState: "22012", message: "division by zero")) {
            try connection().execute(statement, ["0"])
        }
    }

    @Test func statementTimeoutCancelsSlowQueries() {
        let statement = PreparedStatement(name: "test_sleep", sql: "SELECT pg_sleep(2)")
        #expect(throws: PostgresError.statementTimeout(statement: "test_sleep")) {
            try connection(statementTimeoutMilliseconds: 100).execute(statement, [])
        }
    }

    @Test func reconnectsAfterTheServerDropsTheConnection() throws {
        let database = connection()
        let pid = PreparedStatement(name: "test_pid", sql: "SELECT pg_backend_pid()")
        let first = try database.execute(pid, []).int(0, 0)!
        let other = connection()
        let kill = PreparedStatement(name: "test_kill", sql: "SELECT pg_terminate_backend($1::int)")
        _ = try other.execute(kill, [String(first)])
        usleep(100_000)
        let second = try database.execute(pid, []).int(0, 0)!
        #expect(second != first)
    }

    @Test func unreachableServerFailsFastAndIsSkippedBriefly() {
        let database = PostgresConnection(configuration: .init(url: "postgresql://nobody@127.0.0.1:1/none", connectTimeoutSeconds: 1))
        let statement = PreparedStatement(name: "test_unreachable", sql: "SELECT 1")
        #expect(throws: (any Error).self) { try database.execute(statement, []) }
        do {
            _ = try database.execute(statement, [])
            Issue.record("expected a failure")
        } catch {
            #expect(error.isUnavailable)
            guard case .connectionFailed(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("next attempt"))
        }
    }

    @Test func nulBytesInParametersAreRefused() {
        let statement = PreparedStatement(name: "test_nul", sql: "SELECT $1::text")
        #expect(throws: PostgresError.invalidParameter(statement: "test_nul", index: 1)) {
            try connection().execute(statement, ["a\u{0}b"])
        }
    }
}
