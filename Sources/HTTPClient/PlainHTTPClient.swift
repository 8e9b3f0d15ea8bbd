import CCurl

/// Plain HTTP/1.1 (no TLS) to one server: on a unix socket (libcurl's `CURLOPT_UNIX_SOCKET_PATH`),
/// or at `host:port` on a private network; the connection kept alive between requests and
/// opened again when the server closed it.
///
/// One client per thread: the libcurl handle is not shared (`Sendable` it is not).
public final class PlainHTTPClient {
    /// What came back: the status and the body; the headers are not kept.
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]
    }

    /// The server: a unix socket's path (starting with `/`), or `host:port`.
    public let server: String
    private let handle: UnsafeMutableRawPointer  // CURL *
    private let timeoutMilliseconds: Int

    /// - Throws: `HTTPClientError.cannotInitialize` when libcurl has no handle to give.
    public init(server: String, timeoutMilliseconds: Int) throws(HTTPClientError) {
        guard let handle = curl_easy_init() else { throw .cannotInitialize }
        self.server = server
        self.handle = handle
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    deinit {
        curl_easy_cleanup(handle)
    }

    /// Sends `method path` with `headers` and `body` (`Content-Length` set when there is one)
    /// and waits up to the timeout for the whole answer.
    /// - Throws: `HTTPClientError.failed` with libcurl's reason (socket missing, refused,
    ///   timed out, not HTTP).
    public func request(_ method: String, path: String, headers: [(String, String)] = [],
                        body: [UInt8] = []) throws(HTTPClientError) -> Response {
        curl_easy_reset(handle)  // keeps the connection cache
        var received = ResponseBody()
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip
        let code: CURLcode = withUnsafeMutablePointer(to: &received) { receivedPointer in
            body.withUnsafeBufferPointer { bodyBytes in
                if server.hasPrefix("/") {
                    ccurl_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, server)
                    ccurl_setopt_string(handle, CURLOPT_URL, "http://localhost" + path)
                } else {
                    ccurl_setopt_string(handle, CURLOPT_URL, "http://\(server)" + path)
                    ccurl_setopt_string(handle, CURLOPT_NOPROXY, "*")  // never through an http_proxy
                    ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, timeoutMilliseconds)
                }
                ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
                ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMilliseconds)
                ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
                ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
                if !body.isEmpty {
                    ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bodyBytes.baseAddress))
                    ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
                }
                ccurl_setopt_write_function(handle) { data, size, count, context in
                    let bytes = size * count
                    guard let data, let context else { return bytes }
                    context.assumingMemoryBound(to: ResponseBody.self).pointee.bytes
                        .append(contentsOf: UnsafeRawBufferPointer(start: data, count: bytes))
                    return bytes
                }
                ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, UnsafeMutableRawPointer(receivedPointer))
                return curl_easy_perform(handle)
            }
        }
        guard code == CURLE_OK else {
            throw .failed(server: server, reason: String(cString: curl_easy_strerror(code)))
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: received.bytes)
    }
}

private struct ResponseBody {
    var bytes: [UInt8] = []
}

/// Why a request got no answer.
public enum HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotInitialize
    case failed(server: String, reason: String)

    public var description: String {
        switch self {
        case .cannotInitialize: "libcurl could not make a handle"
        case .failed(let server, let reason): "HTTP to \(server) failed: \(reason)"
        }
    }
}
