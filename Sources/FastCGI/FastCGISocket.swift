import CFastCGI

#if canImport(Glibc)
import Glibc
#endif

/// Opens the listening socket that nginx connects to.
public enum FastCGISocket {
    /// Who may connect to a unix socket. Connecting needs write permission on the socket file.
    public struct Permissions: Sendable, Equatable {
        /// Applied with `chmod`; the default lets owner and group connect, nobody else.
        public var mode: mode_t
        /// User name to `chown` the socket to; `nil` keeps the process's user.
        public var owner: String?
        /// Group name to `chown` the socket to, typically nginx's group; `nil` keeps the process's group.
        public var group: String?

        public init(mode: mode_t = 0o660, owner: String? = nil, group: String? = nil) {
            self.mode = mode
            self.owner = owner
            self.group = group
        }
    }

    /// Opens a listening socket with `FCGX_OpenSocket` and returns its descriptor.
    ///
    /// - `address` containing a `/` is a unix socket path. A stale socket file left by a previous run is
    ///   removed; a socket another process still accepts on, or a file that is not a socket, is an error.
    ///   The socket is created with `permissions` already in force (the process umask is narrowed around
    ///   `bind`), then `chown`ed if asked.
    /// - Otherwise `address` is `host:port` or `:port` (all interfaces) and is bound as given.
    ///   Bind TCP only to loopback or a private network: libfcgi 2.4.2-2+deb12u1 can still be crashed
    ///   by a crafted FCGI_PARAMS record (CVE-2025-23016), so nothing untrusted may reach the port.
    ///   Port 0 is rejected because libfcgi would silently treat `host:0` as a unix socket path.
    ///
    /// The descriptor is close-on-exec: a supervisor hands it to its workers by `dup2` onto fd 0,
    /// which clears the flag on the copy.
    public static func open(
        address: String,
        backlog: Int32,
        permissions: Permissions = Permissions()
    ) throws(FastCGIError) -> Int32 {
        switch try ListenAddress(parsing: address) {
        case .unix(let path):
            try removeStaleSocket(at: path)
            let previousMask = umask(~permissions.mode & 0o777)
            let descriptor = FCGX_OpenSocket(path, backlog)
            let openErrno = errno
            umask(previousMask)
            guard descriptor >= 0 else {
                throw .cannotOpenSocket(address: address, errno: openErrno)
            }
            do {
                try apply(permissions, to: path)
            } catch {
                close(descriptor)
                throw error
            }
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            return descriptor

        case .tcp:
            let descriptor = FCGX_OpenSocket(address, backlog)
            guard descriptor >= 0 else {
                throw .cannotOpenSocket(address: address, errno: errno)
            }
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            return descriptor
        }
    }

    /// The listening socket this process was started with on `descriptor`, or `nil` when that
    /// descriptor is not a listening stream socket.
    ///
    /// The FastCGI specification (section 2.2) has the web server or process manager leave the
    /// listening socket open as `FCGI_LISTENSOCK_FILENO` (0); systemd does the same for a service
    /// with `StandardInput=socket` whose socket unit has `Accept=no`. The socket then outlives
    /// the process: connections queue in its backlog while the pool restarts. Its owner, mode and
    /// backlog are the starter's. The descriptor is made close-on-exec like one `open` returns.
    public static func inherited(descriptor: Int32 = 0) -> Int32? {
        var accepting: Int32 = 0
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 1 else {
            return nil
        }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &length) == 0,
              type == Int32(SOCK_STREAM.rawValue)
        else {
            return nil
        }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        return descriptor
    }

    private static func removeStaleSocket(at path: String) throws(FastCGIError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw .socketPathOccupied(path: path)
        }
        if UnixSocketProbe.acceptsConnections(at: path) {
            throw .socketInUse(path: path)
        }
        unlink(path)
    }

    private static func apply(_ permissions: Permissions, to path: String) throws(FastCGIError) {
        if chmod(path, permissions.mode) != 0 {
            throw .cannotSetPermissions(path: path, errno: errno)
        }
        guard permissions.owner != nil || permissions.group != nil else { return }
        let unchanged = UInt32.max  // chown's "leave as is"
        let uid = try permissions.owner.map { name throws(FastCGIError) in try userID(named: name) } ?? unchanged
        let gid = try permissions.group.map { name throws(FastCGIError) in try groupID(named: name) } ?? unchanged
        if chown(path, uid, gid) != 0 {
            throw .cannotSetPermissions(path: path, errno: errno)
        }
    }

    private static func userID(named name: String) throws(FastCGIError) -> uid_t {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &found) == 0, found != nil else {
            throw .unknownUser(name)
        }
        return entry.pw_uid
    }

    private static func groupID(named name: String) throws(FastCGIError) -> gid_t {
        var entry = group()
        var found: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &found) == 0, found != nil else {
            throw .unknownGroup(name)
        }
        return entry.gr_gid
    }
}

/// The two kinds of address `FCGX_OpenSocket` understands, told apart the way this module documents.
enum ListenAddress: Equatable {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    /// Room in `sockaddr_un.sun_path`, keeping one byte for the terminating NUL.
    static let maximumPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    init(parsing address: String) throws(FastCGIError) {
        if address.contains("/") {
            guard address.utf8.count <= Self.maximumPathBytes else {
                throw .socketPathTooLong(path: address, maximumBytes: Self.maximumPathBytes)
            }
            self = .unix(path: address)
            return
        }
        guard let colon = address.lastIndex(of: ":"),
              let port = UInt16(address[address.index(after: colon)...]),
              port != 0
        else {
            throw .invalidAddress(address)
        }
        self = .tcp(host: String(address[..<colon]), port: port)
    }
}

/// Tells a live unix socket from a stale file by trying to connect to it.
enum UnixSocketProbe {
    static func acceptsConnections(at path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { pathBytes in
            pathBytes.copyBytes(from: path.utf8.prefix(pathBytes.count - 1))
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }
}
