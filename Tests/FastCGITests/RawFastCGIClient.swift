import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Just enough of the FastCGI protocol to do what `cgi-fcgi` cannot: keep a connection open
/// between requests (`FCGI_KEEP_CONN`), as nginx does with `fastcgi_keep_conn on`.
final class RawFastCGIClient {
    private enum RecordType: UInt8 {
        case beginRequest = 1, endRequest = 3, params = 4, stdin = 5, stdout = 6
    }

    private var descriptor: Int32

    init(unixSocket path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)  // a spawned cgi-fcgi must not hold it open
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connected == 0 else {
            close(descriptor)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { disconnect() }

    func disconnect() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Sends a request that asks to keep the connection, and returns what the application wrote to
    /// stdout, or `nil` when the connection ended before FCGI_END_REQUEST.
    func request(params: [String: String], requestID: UInt16 = 1) -> [UInt8]? {
        var bytes: [UInt8] = []
        let keepConnection: UInt8 = 1
        bytes += record(.beginRequest, requestID, [0, 1, keepConnection, 0, 0, 0, 0, 0])
        var pairs: [UInt8] = []
        for (name, value) in params {
            precondition(name.utf8.count < 128 && value.utf8.count < 128)
            pairs += [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
        }
        bytes += record(.params, requestID, pairs) + record(.params, requestID, [])
        bytes += record(.stdin, requestID, [])
        guard send(descriptor, bytes, bytes.count, 0) == bytes.count else { return nil }

        var stdout: [UInt8] = []
        while let (type, content) = readRecord() {
            if type == RecordType.stdout.rawValue { stdout += content }
            if type == RecordType.endRequest.rawValue { return stdout }
        }
        return nil
    }

    /// Whether the peer closed the connection (read returns end of file) within the receive timeout.
    func peerClosed() -> Bool {
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, 0) == 0
    }

    /// Whether nothing arrives, not even the peer's close, for `duration`.
    func staysQuiet(for duration: Duration) -> Bool {
        var descriptor = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        return poll(&descriptor, 1, milliseconds) == 0
    }

    private func record(_ type: RecordType, _ requestID: UInt16, _ content: [UInt8]) -> [UInt8] {
        let length = UInt16(content.count)
        return [1, type.rawValue, UInt8(requestID >> 8), UInt8(requestID & 0xff),
                UInt8(length >> 8), UInt8(length & 0xff), 0, 0] + content
    }

    private func readRecord() -> (type: UInt8, content: [UInt8])? {
        guard let header = readExactly(8) else { return nil }
        let contentLength = Int(header[4]) << 8 | Int(header[5])
        guard let content = readExactly(contentLength), readExactly(Int(header[6])) != nil else { return nil }
        return (header[1], content)
    }

    private func readExactly(_ count: Int) -> [UInt8]? {
        var result = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let n = result.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + received, count - received, 0) }
            if n <= 0 { return nil }
            received += n
        }
        return result
    }
}
