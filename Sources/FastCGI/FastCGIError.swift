#if canImport(Glibc)
import Glibc
#endif

/// What went wrong while setting up FastCGI, with what an operator needs to fix it.
public enum FastCGIError: Error, Sendable, Equatable {
    /// The address is neither a socket path (it must contain a `/`) nor `host:port`.
    case invalidAddress(String)
    /// Unix socket paths must fit `sockaddr_un.sun_path`, including the terminating NUL.
    case socketPathTooLong(path: String, maximumBytes: Int)
    /// Something that is not a socket exists at the path; it is left alone.
    case socketPathOccupied(path: String)
    /// Another process is accepting connections on this socket.
    case socketInUse(path: String)
    case cannotOpenSocket(address: String, errno: Int32)
    case cannotSetPermissions(path: String, errno: Int32)
    case unknownUser(String)
    case unknownGroup(String)
    /// `FCGX_Init` failed; `code` is its return value (an errno or a libfcgi code).
    case libraryInitializationFailed(code: Int32)
    /// `pipe2` failed (usually EMFILE: out of descriptors).
    case cannotCreateStopLatch(errno: Int32)
    /// `epoll_create1` failed (usually EMFILE: out of descriptors).
    case cannotCreateEpoll(errno: Int32)
    /// `FCGX_Accept_r` failed with an errno that will not go away by retrying (e.g. ENOTSOCK,
    /// EBADF: the listening descriptor is not a listening socket).
    case acceptFailed(errno: Int32)
}

extension FastCGIError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .invalidAddress(let address):
            return "invalid FastCGI address '\(address)': use a socket path containing '/' or host:port"
        case .socketPathTooLong(let path, let maximumBytes):
            return "socket path '\(path)' is longer than \(maximumBytes) bytes"
        case .socketPathOccupied(let path):
            return "'\(path)' exists and is not a socket; refusing to remove it"
        case .socketInUse(let path):
            return "another process is listening on '\(path)'"
        case .cannotOpenSocket(let address, let errno):
            return "cannot listen on '\(address)': \(errorString(errno))"
        case .cannotSetPermissions(let path, let errno):
            return "cannot set owner or mode of '\(path)': \(errorString(errno))"
        case .unknownUser(let name):
            return "unknown user '\(name)'"
        case .unknownGroup(let name):
            return "unknown group '\(name)'"
        case .libraryInitializationFailed(let code):
            return "FCGX_Init failed with code \(code)"
        case .cannotCreateStopLatch(let errno):
            return "cannot create the stop latch (pipe): \(errorString(errno))"
        case .cannotCreateEpoll(let errno):
            return "cannot create the epoll set of kept connections: \(errorString(errno))"
        case .acceptFailed(let errno):
            return "accepting FastCGI connections failed: \(errorString(errno))"
        }
    }
}

func errorString(_ code: Int32) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}
