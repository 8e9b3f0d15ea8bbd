/// An error the API answers with, as `{"error","message","request_id"}`.
public enum APIError: Error, Equatable, Sendable {
    case badRequest(String)
    case unauthorized(String)
    /// A valid token without the scope the request needs.
    case forbidden(String)
    case notFound(String)
    case methodNotAllowed(allowed: [String])
    /// The request contradicts what was written before (an `Idempotency-Key` reused with another
    /// body, an event id that names another user's row).
    case conflict(String)
    case payloadTooLarge(limitBytes: Int)
    case unsupportedMediaType
    /// The database is unreachable or too slow; the client should retry after `retryAfterSeconds`.
    case unavailable(retryAfterSeconds: Int)
    case internalError

    public var status: Int {
        switch self {
        case .badRequest: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .conflict: 409
        case .payloadTooLarge: 413
        case .unsupportedMediaType: 415
        case .unavailable: 503
        case .internalError: 500
        }
    }

    public var code: String {
        switch self {
        case .badRequest: "bad_request"
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .conflict: "conflict"
        case .payloadTooLarge: "payload_too_large"
        case .unsupportedMediaType: "unsupported_media_type"
        case .unavailable: "unavailable"
        case .internalError: "internal"
        }
    }

    public var message: String {
        switch self {
        case .badRequest(let message), .unauthorized(let message), .forbidden(let message), .notFound(let message),
             .conflict(let message): message
        case .payloadTooLarge(let limit): "the request body is larger than \(limit) bytes"
        case .unsupportedMediaType: "the request body must be application/json"
        case .methodNotAllowed(let allowed): "method not allowed; use \(allowed.joined(separator: ", "))"
        case .unavailable: "the database is unavailable; try again shortly"
        case .internalError: "internal error"
        }
    }

    public var headers: [(String, String)] {
        switch self {
        case .unauthorized: [("WWW-Authenticate", "Bearer")]
        case .methodNotAllowed(let allowed): [("Allow", allowed.joined(separator: ", "))]
        case .unavailable(let seconds): [("Retry-After", String(seconds))]
        default: []
        }
    }

    public func response(requestID: String) -> APIResponse {
        var json = JSONWriter(capacity: 128)
        json.object { json in
            json.field("error", code)
            json.field("message", message)
            json.field("request_id", requestID)
        }
        return APIResponse(status: status, headers: headers, body: json.bytes)
    }
}
