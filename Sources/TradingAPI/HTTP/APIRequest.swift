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
    /// The `If-None-Match` header: entity tags the client holds.
    public var ifNoneMatch: String?
    /// The `Last-Event-ID` header of a reconnecting live stream.
    public var lastEventID: String?
    /// The live stream's session cookie (`StreamSession.cookieName`), read for the stream only.
    public var streamCookie: String?
    /// Whether the client reached nginx over TLS (`HTTPS=on`): the session cookie is then `Secure`.
    public var overTLS = false
    /// The write endpoints' request headers.
    public var contentType: String?
    public var idempotencyKey: String?
    /// `CONTENT_LENGTH` as nginx declared it (nginx has already refused bodies over its limit).
    public var declaredBodyLength: Int?
    /// The body, read only for `POST` and only when it fits `WriteEndpoints.maximumBodyBytes`.
    public var body: [UInt8]
    /// When nginx began the request (its `$msec`, passed as `REQUEST_START`), in microseconds
    /// since the epoch, millisecond resolution: the start of the request's wait for a worker.
    public var startedByNginxAt: Int64?

    public init(method: String, path: String, query: String, authorization: String?, requestID: String,
                ifNoneMatch: String? = nil, contentType: String? = nil, idempotencyKey: String? = nil,
                declaredBodyLength: Int? = nil, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.authorization = authorization
        self.requestID = requestID
        self.ifNoneMatch = ifNoneMatch
        self.contentType = contentType
        self.idempotencyKey = idempotencyKey
        self.declaredBodyLength = declaredBodyLength
        self.body = body
    }

    /// The largest body a worker reads (`WriteEndpoints.maximumBodyBytes`).
    public static let maximumBodyBytes = WriteEndpoints.maximumBodyBytes
}

extension APIRequest {
    /// Reads what the service needs from the CGI parameters nginx sends over FastCGI
    /// (`REQUEST_METHOD`, `DOCUMENT_URI`, `QUERY_STRING`, `HTTP_AUTHORIZATION`, `REQUEST_ID`,
    /// `HTTP_IF_NONE_MATCH`, `CONTENT_TYPE`, `CONTENT_LENGTH`, `HTTP_IDEMPOTENCY_KEY`, for the
    /// stream `HTTP_LAST_EVENT_ID` and `HTTP_COOKIE`, for the session `HTTPS`);
    /// `readBody(limit)` is called for a `POST` whose declared length fits the limit.
    public init(cgiParameter parameter: (String) -> String?, readBody: (Int) -> [UInt8] = { _ in [] }) {
        let uri = parameter("DOCUMENT_URI") ?? parameter("REQUEST_URI").map { String($0.prefix { $0 != "?" }) } ?? "/"
        let method = parameter("REQUEST_METHOD") ?? "GET"
        self.init(method: method, path: uri, query: parameter("QUERY_STRING") ?? "",
                  authorization: parameter("HTTP_AUTHORIZATION"),
                  requestID: Self.sanitizedRequestID(parameter("REQUEST_ID")), ifNoneMatch: parameter("HTTP_IF_NONE_MATCH"))
        startedByNginxAt = parameter("REQUEST_START").flatMap(Self.microseconds(fromNginxMsec:))
        if uri.hasSuffix("/stream") {
            lastEventID = parameter("HTTP_LAST_EVENT_ID")
            streamCookie = parameter("HTTP_COOKIE").flatMap(StreamSession.token(inCookieHeader:))
        }
        if uri.hasSuffix("/session") { overTLS = parameter("HTTPS") == "on" }
        // Only writes have bodies; reads skip the four parameter scans.
        guard method == "POST" else { return }
        let declared = parameter("CONTENT_LENGTH").flatMap { Int($0) }
        contentType = parameter("CONTENT_TYPE")
        idempotencyKey = parameter("HTTP_IDEMPOTENCY_KEY")
        declaredBodyLength = declared
        body = (declared ?? 0) <= Self.maximumBodyBytes ? readBody(Self.maximumBodyBytes) : []
    }

    /// From nginx's `$msec` ("1733030000.123") to microseconds since the epoch; read byte by
    /// byte (it arrives with every request).
    static func microseconds(fromNginxMsec text: String) -> Int64? {
        var text = text
        return text.withUTF8 { bytes -> Int64? in
            // "<1-12 digits>.<3 digits>": at most 15 digits, so the wrapping arithmetic cannot wrap.
            guard (5...16).contains(bytes.count), bytes[bytes.count - 4] == UInt8(ascii: ".") else { return nil }
            var value: Int64 = 0
            for (index, byte) in bytes.enumerated() where index != bytes.count - 4 {
                let digit = byte &- UInt8(ascii: "0")
                guard digit <= 9 else { return nil }
                value = value &* 10 &+ Int64(digit)
            }
            return value &* 1000
        }
    }

    /// How long the request waited between nginx and this worker's loop; `nil` without nginx's
    /// start time. Millisecond resolution (nginx's), never negative.
    func queueWaitMicroseconds(now: Timestamp) -> UInt64? {
        startedByNginxAt.map { UInt64(max(0, now.microseconds - $0)) }
    }

    /// nginx's `$request_id` is 32 hex digits; anything else is replaced, so logs and bodies
    /// never carry attacker-chosen text; without one (not behind nginx) a random one is made.
    public static func sanitizedRequestID(_ value: String?) -> String {
        if let value, (1...64).contains(value.utf8.count),
           value.utf8AllSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == 0x2d }) {
            return value
        }
        return String(UInt64.random(in: .min ... .max), radix: 16) + String(UInt64.random(in: .min ... .max), radix: 16)
    }
}

/// The finished response: status, content type, extra headers and the body bytes.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// JSON, but for the operations pages' text.
    public var contentType: String

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8], contentType: String = Self.jsonContentType) {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

    public static let jsonContentType = "application/json; charset=utf-8"
}
