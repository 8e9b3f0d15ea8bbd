/// An HTTP request as the worker received it from nginx; nothing FastCGI-specific.
public struct APIRequest: Sendable {
    public var method: String
    /// The path without the query string, still percent-encoded.
    public var path: String
    /// The raw query string without `?`.
    public var query: String
    public var authorization: String?
    /// nginx's `$request_id`, echoed in errors and logs.
    public var requestID: String

    public init(method: String, path: String, query: String, authorization: String?, requestID: String) {
        self.method = method
        self.path = path
        self.query = query
        self.authorization = authorization
        self.requestID = requestID
    }
}

/// The finished response: status, extra headers and the JSON body bytes.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static let contentType = "application/json; charset=utf-8"
}

/// Whether the body came from memcached (`X-Cache`).
public enum CacheOutcome: String, Sendable {
    case hit = "HIT"
    case miss = "MISS"
    /// Caching is off, or memcached could not be reached: answered from Postgres.
    case bypass = "BYPASS"
}
