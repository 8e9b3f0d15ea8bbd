import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// The accept queue of a listening socket: connections the kernel has accepted that no worker
/// has taken yet, and the queue's length (`listen`'s backlog). php-fpm's status page reads 0
/// for a unix socket; this asks the kernel (sock_diag(7), `UDIAG_SHOW_RQLEN`: for a listening
/// unix socket the receive queue is the accept queue), as `ss -xl` does.
public struct AcceptQueue: Sendable, Equatable {
    public var depth: Int
    public var limit: Int

    /// The queue of the unix socket `descriptor` listens on; `nil` for another kind of socket or
    /// when the kernel will not say.
    public static func of(_ descriptor: Int32) -> AcceptQueue? {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        let netlink = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_SOCK_DIAG)
        guard netlink >= 0 else { return nil }
        defer { close(netlink) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(netlink, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var request = Request(
            header: nlmsghdr(nlmsg_len: UInt32(MemoryLayout<Request>.size), nlmsg_type: UInt16(SOCK_DIAG_BY_FAMILY),
                             nlmsg_flags: UInt16(NLM_F_REQUEST), nlmsg_seq: 1, nlmsg_pid: 0),
            body: unix_diag_req(sdiag_family: UInt8(AF_UNIX), sdiag_protocol: 0, pad: 0,
                                udiag_states: 1 << 10,  // TCP_LISTEN
                                udiag_ino: UInt32(truncatingIfNeeded: status.st_ino), udiag_show: UInt32(UDIAG_SHOW_RQLEN),
                                udiag_cookie: (UInt32.max, UInt32.max)))  // INET_DIAG_NOCOOKIE
        guard send(netlink, &request, MemoryLayout<Request>.size, 0) == MemoryLayout<Request>.size else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let received = buffer.withUnsafeMutableBytes { recv(netlink, $0.baseAddress, $0.count, 0) }
        guard received >= MemoryLayout<nlmsghdr>.size else { return nil }
        return buffer.withUnsafeBytes { bytes in parse(UnsafeRawBufferPointer(rebasing: bytes[0..<received])) }
    }

    private struct Request {
        var header: nlmsghdr
        var body: unix_diag_req
    }

    /// Reads the `UNIX_DIAG_RQLEN` attribute of the answer (netlink(7), sock_diag(7)).
    private static func parse(_ bytes: UnsafeRawBufferPointer) -> AcceptQueue? {
        let header = bytes.loadUnaligned(as: nlmsghdr.self)
        guard header.nlmsg_type == UInt16(SOCK_DIAG_BY_FAMILY), Int(header.nlmsg_len) <= bytes.count else { return nil }
        var offset = align(MemoryLayout<nlmsghdr>.size) + align(MemoryLayout<unix_diag_msg>.size)
        while offset + 4 <= Int(header.nlmsg_len) {
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = Int(bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
            guard length >= 4, offset + length <= Int(header.nlmsg_len) else { return nil }
            if type == Int(UNIX_DIAG_RQLEN), length >= 4 + MemoryLayout<unix_diag_rqlen>.size {
                let queue = bytes.loadUnaligned(fromByteOffset: offset + 4, as: unix_diag_rqlen.self)
                return AcceptQueue(depth: Int(queue.udiag_rqueue), limit: Int(queue.udiag_wqueue))
            }
            offset += align(length)
        }
        return nil
    }

    private static func align(_ length: Int) -> Int { (length + 3) & ~3 }
}
