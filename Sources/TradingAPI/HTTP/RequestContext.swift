import Logging

/// What one request carries down the data path: its id, its one reading of the clock, and a
/// logger whose lines name the request.
struct RequestContext {
    /// nginx's `$request_id` (sanitised: `APIRequest.sanitizedRequestID`).
    let requestID: String
    /// The request's one reading of the clock: the token's `exp`, the status view's age and the
    /// guards' `last_evaluated_at` all use it.
    let now: Timestamp
    private let serviceLogger: Logger

    init(requestID: String, now: Timestamp, logger: Logger) {
        self.requestID = requestID
        self.now = now
        self.serviceLogger = logger
    }

    /// The service's logger with `request_id` set; built only when something is logged.
    var logger: Logger {
        var logger = serviceLogger
        logger[metadataKey: "request_id"] = "\(requestID)"
        return logger
    }

    /// `now` in seconds since the epoch, as JWT `exp` and `nbf` are.
    var nowSeconds: Double { Double(now.microseconds) / 1_000_000 }
}
