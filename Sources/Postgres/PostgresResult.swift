#if canImport(Glibc)
import Glibc
#endif
import CLibPQ

/// The rows of one successful statement, in libpq's text format.
///
/// Accessors read straight from libpq's buffer; `nil` means SQL NULL.
public final class PostgresResult {
    private let handle: OpaquePointer
    /// The prepared statement that produced it, for errors.
    public let statement: String
    public let rowCount: Int
    public let columnCount: Int

    init(handle: OpaquePointer, statement: String) {
        self.handle = handle
        self.statement = statement
        self.rowCount = Int(PQntuples(handle))
        self.columnCount = Int(PQnfields(handle))
    }

    deinit { PQclear(handle) }

    /// The position of the result column called `name` (the select list's `AS name`; lowercase,
    /// unquoted). Throws `.missingColumn` when the statement selects no such column.
    public func column(named name: String) throws(PostgresError) -> Int {
        let index = PQfnumber(handle, name)
        guard index >= 0 else { throw .missingColumn(statement: statement, column: name) }
        return Int(index)
    }

    /// Every column's name, in order.
    public var columnNames: [String] {
        (0..<columnCount).map { String(cString: PQfname(handle, Int32($0))) }
    }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(handle, Int32(row), Int32(column)) == 1
    }

    public func string(_ row: Int, _ column: Int) -> String? {
        guard let value = value(row, column) else { return nil }
        return String(cString: value)
    }

    public func int(_ row: Int, _ column: Int) -> Int? {
        guard let value = value(row, column) else { return nil }
        return Int(strtoll(value, nil, 10))
    }

    public func double(_ row: Int, _ column: Int) -> Double? {
        guard let value = value(row, column) else { return nil }
        return strtod(value, nil)
    }

    public func bool(_ row: Int, _ column: Int) -> Bool? {
        guard let value = value(row, column) else { return nil }
        return value.pointee == UInt8(ascii: "t")
    }

    private func value(_ row: Int, _ column: Int) -> UnsafeMutablePointer<CChar>? {
        if PQgetisnull(handle, Int32(row), Int32(column)) == 1 { return nil }
        return PQgetvalue(handle, Int32(row), Int32(column))
    }
}
