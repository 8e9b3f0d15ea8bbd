/// Builds the CGI header block that precedes a response body.
enum ResponseHead {
    static func write(status: Int, headers: [(String, String)], bodyCount: Int, into block: inout [UInt8]) {
        append("Status: ", to: &block)
        append(String(status), to: &block)
        if let reason = reasonPhrase(for: status) {
            block.append(UInt8(ascii: " "))
            append(reason, to: &block)
        }
        appendLineEnd(to: &block)

        var hasContentLength = false
        for (name, value) in headers {
            if !hasContentLength && isContentLength(name) {
                hasContentLength = true
            }
            appendHeaderText(name, to: &block)
            append(": ", to: &block)
            appendHeaderText(value, to: &block)
            appendLineEnd(to: &block)
        }
        if !hasContentLength {
            append("Content-Length: ", to: &block)
            append(String(bodyCount), to: &block)
            appendLineEnd(to: &block)
        }
        appendLineEnd(to: &block)
    }

    /// Reason phrases as RFC 9110 names them; other codes go out without one, which nginx accepts.
    static func reasonPhrase(for status: Int) -> String? {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 413: "Content Too Large"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: nil
        }
    }

    private static func isContentLength(_ name: String) -> Bool {
        name.utf8.count == 14 && name.lowercased() == "content-length"
    }

    private static func append(_ text: String, to block: inout [UInt8]) {
        block.append(contentsOf: text.utf8)
    }

    private static func appendLineEnd(to block: inout [UInt8]) {
        block.append(13)
        block.append(10)
    }

    private static func appendHeaderText(_ text: String, to block: inout [UInt8]) {
        let carriageReturn: UInt8 = 13, lineFeed: UInt8 = 10
        let isLineBreak = { (byte: UInt8) in byte == carriageReturn || byte == lineFeed }
        // The contiguous UTF-8 when the string has it: a plain loop, not the view's iterator.
        let hasLineBreak = text.utf8.withContiguousStorageIfAvailable { $0.contains(where: isLineBreak) }
            ?? text.utf8.contains(where: isLineBreak)
        if hasLineBreak {
            block.append(contentsOf: text.utf8.map { $0 == carriageReturn || $0 == lineFeed ? UInt8(ascii: " ") : $0 })
        } else {
            block.append(contentsOf: text.utf8)
        }
    }
}
