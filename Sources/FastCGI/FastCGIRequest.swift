import CFastCGI

#if canImport(Glibc)
import Glibc
#endif

/// One accepted request: its CGI parameters, its body, and the way to answer it.
///
/// Valid until it is answered (`respond` or `finish`) or the responder accepts the next one.
/// After that every call is harmless: parameters read as `nil`, the body as empty, and
/// `respond` writes nothing and returns `false`. Read what you need before responding.
public struct FastCGIRequest {
    private let responder: FastCGIResponder
    private let number: UInt64

    init(responder: FastCGIResponder, number: UInt64) {
        self.responder = responder
        self.number = number
    }

    /// The value of one parameter, e.g. `REQUEST_METHOD`, `QUERY_STRING`, `HTTP_AUTHORIZATION`.
    public func param(_ name: String) -> String? {
        responder.withOpenRequest(number) { raw -> String? in
            guard let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
            return String(cString: value)
        } ?? nil
    }

    /// Every parameter in the order the web server sent them.
    public var params: [(name: String, value: String)] {
        responder.withOpenRequest(number) { raw in
            var result: [(name: String, value: String)] = []
            guard var entry = raw.pointee.envp else { return result }
            while let pair = entry.pointee {
                let text = String(cString: pair)
                if let equals = text.firstIndex(of: "=") {
                    result.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
                }
                entry += 1
            }
            return result
        } ?? []
    }

    /// `CONTENT_LENGTH`, or `nil` when it is absent, empty or not a number.
    public var contentLength: Int? {
        param("CONTENT_LENGTH").flatMap { Int($0) }
    }

    /// Reads the request body: `CONTENT_LENGTH` bytes (until end of input without one), but never
    /// more than `limit`. Compare `contentLength` with the limit first to answer 413.
    public func readBody(limit: Int) -> [UInt8] {
        let wanted = max(0, min(contentLength ?? limit, limit, Int(Int32.max)))
        guard wanted > 0 else { return [] }
        return responder.withOpenRequest(number) { raw in
            [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initializedCount in
                let received = buffer.withMemoryRebound(to: CChar.self) { chars in
                    FCGX_GetStr(chars.baseAddress, Int32(wanted), raw.pointee.in)
                }
                initializedCount = max(0, Int(received))
            }
        } ?? []
    }

    /// Writes the response and finishes the request.
    ///
    /// The header block is CGI-style, `Status: 200 OK` then `headers` in order, then the body.
    /// A `Content-Length` header is added unless `headers` has one. Carriage returns and line feeds
    /// in header names and values become spaces, so a header cannot smuggle in another.
    ///
    /// - Returns: `false` (and writes nothing) when the request was already answered.
    @discardableResult
    public func respond(status: Int, headers: [(String, String)], body: [UInt8]) -> Bool {
        // Header block and body are copied into libfcgi's 8 KiB output buffer by one FCGX_PutStr
        // each; libfcgi decides the write(2)s (one for a response that fits the buffer), so joining
        // them into one array first would only add a copy of the body.
        responder.respond(to: number, status: status, headers: headers, body: body)
    }

    /// Finishes the request without writing (more). Nothing happens if it was already answered.
    public func finish() {
        responder.finish(number)
    }
}

@available(*, unavailable)
extension FastCGIRequest: Sendable {}
