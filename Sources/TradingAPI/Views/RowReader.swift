import Postgres

/// Typed column access over a result, as the views read it.
struct RowReader {
    let result: PostgresResult

    var count: Int { result.rowCount }
    func isNull(_ row: Int, _ column: Int) -> Bool { result.isNull(row, column) }
    func string(_ row: Int, _ column: Int) -> String? { result.string(row, column) }
    func int(_ row: Int, _ column: Int) -> Int? { result.int(row, column) }
    func int64(_ row: Int, _ column: Int) -> Int64? { result.int(row, column).map(Int64.init) }
    func double(_ row: Int, _ column: Int) -> Double? { result.double(row, column) }
    func bool(_ row: Int, _ column: Int) -> Bool? { result.bool(row, column) }
    func timestamp(_ row: Int, _ column: Int) -> Timestamp? { int64(row, column).map(Timestamp.init) }
}

/// Runs a statement and hands its rows to a view.
extension PostgresConnection {
    func rows(_ statement: PreparedStatement, _ parameters: [String?]) throws(PostgresError) -> RowReader {
        RowReader(result: try execute(statement, parameters))
    }
}
