import Postgres

/// A statement's result columns: an enum whose `name`s are the select list's names (`AS name`).
/// Decoders read by these names, never by position; `QueryPlanTests` runs every statement and
/// decodes its result, so a select list and its decoder cannot drift apart unnoticed.
///
/// Conform with `Int` raw values left implicit (0, 1, 2, … in declaration order, as
/// `allCases`): a read is then an array index, where a `String`-raw enum would hash its name
/// on every read (≈ 8 % of an uncached status request, bench/profile.sh).
protocol ResultColumn: CaseIterable, RawRepresentable<Int> {
    /// The column's name in the result.
    var name: String { get }
}

/// A result's rows, read through the columns of `Column`; their positions are looked up once.
struct NamedRows<Column: ResultColumn> {
    fileprivate let result: PostgresResult
    /// The result's column position of each `Column`, indexed by its raw value.
    private let positions: [Int]

    /// Throws `.missingColumn` when the result lacks one of `Column`'s names.
    init(_ result: PostgresResult, _ columns: Column.Type = Column.self) throws(PostgresError) {
        var positions: [Int] = []
        for (index, column) in Column.allCases.enumerated() {
            precondition(column.rawValue == index, "\(Column.self): raw values must be 0, 1, 2, … in order")
            positions.append(try result.column(named: column.name))
        }
        self.result = result
        self.positions = positions
    }

    var count: Int { result.rowCount }

    /// Every row, in the result's order.
    var all: [Row<Column>] { (0..<count).map { Row(rows: self, index: $0) } }

    /// The first row, or `nil` for an empty result.
    var first: Row<Column>? { count > 0 ? Row(rows: self, index: 0) : nil }

    fileprivate func position(_ column: Column) -> Int { positions[column.rawValue] }
}

/// One row of `NamedRows`: typed values by column name; `nil` is SQL `NULL`.
struct Row<Column: ResultColumn> {
    fileprivate let rows: NamedRows<Column>
    let index: Int

    func isNull(_ column: Column) -> Bool { rows.result.isNull(index, rows.position(column)) }
    func string(_ column: Column) -> String? { rows.result.string(index, rows.position(column)) }
    func int(_ column: Column) -> Int? { rows.result.int(index, rows.position(column)) }
    func int64(_ column: Column) -> Int64? { int(column).map(Int64.init) }
    func double(_ column: Column) -> Double? { rows.result.double(index, rows.position(column)) }
    func bool(_ column: Column) -> Bool? { rows.result.bool(index, rows.position(column)) }
    /// A column selected as `(extract(epoch FROM t) * 1000000)::int8`.
    func timestamp(_ column: Column) -> Timestamp? { int64(column).map(Timestamp.init) }
}
