/// A named SQL statement, prepared once per connection on first use.
///
/// Declare these as `static let` beside the code that reads their rows; the name must be unique
/// within a connection.
public struct PreparedStatement: Hashable, Sendable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}
