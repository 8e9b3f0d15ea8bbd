/// Why `PostgresConnection.transaction` failed: the body's own error (rolled back), or the
/// database's at `BEGIN` or `COMMIT`.
public enum TransactionError<Body: Error>: Error {
    case body(Body)
    case database(PostgresError)
}

/// Why a Postgres call failed, with what an operator needs to act on it.
public enum PostgresError: Error, Equatable, Sendable {
    /// The server could not be reached or refused the connection (libpq's message).
    case connectionFailed(message: String)
    /// The connection broke during a call; the next call reconnects.
    case connectionLost(message: String)
    /// The statement ran longer than `statement_timeout` and was cancelled (SQLSTATE 57014).
    case statementTimeout(statement: String)
    /// The server rejected the statement (SQLSTATE and message).
    case queryFailed(statement: String, sqlState: String, message: String)
    /// A parameter's value contains a NUL byte, which the text protocol cannot carry.
    case invalidParameter(statement: String, index: Int)
    /// The result has no column of that name: the statement and the code reading it disagree.
    case missingColumn(statement: String, column: String)
    /// A name that would be spliced into SQL (a `LISTEN` channel) is not a plain lowercase identifier.
    case invalidIdentifier(String)

    /// True when the database is unreachable rather than the query being wrong.
    public var isUnavailable: Bool {
        switch self {
        case .connectionFailed, .connectionLost, .statementTimeout: return true
        case .queryFailed, .invalidParameter, .missingColumn, .invalidIdentifier: return false
        }
    }
}
