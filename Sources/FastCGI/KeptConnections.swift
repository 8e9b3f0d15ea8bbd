import CLinux
import CFastCGI
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The FastCGI connections one worker process holds between requests, shared by all its request
/// loops: an epoll(7) set of the listening socket and every connection nginx keeps alive.
///
/// A connection is registered with `EPOLLONESHOT`: when nginx sends a request on it, exactly one
/// waiting loop gets it and owns it, alone, until it hands it back with `returnConnection(_:)`
/// (re-armed) or closes it. So a request never waits behind a loop that is busy while another is
/// free: the loops of a process are one queue, as the listen backlog was without keep-alive. The
/// connection's libfcgi `FCGX_Request` travels through the kernel as the event's 64-bit data; its
/// owner is whoever holds it by that protocol, which is why no Swift reference to it is shared.
///
/// The listening socket is made non-blocking and registered level-triggered with
/// `EPOLLEXCLUSIVE`, so a new connection wakes one process's loop, and a loop that loses a race
/// for it gets `EAGAIN`.
public final class KeptConnections: Sendable {
    /// What `next(timeout:)` found.
    enum Event {
        /// The listening socket is readable: accept with a request of your own.
        case newConnection
        /// nginx sent something on this held connection (a request, or its close); yours now.
        case ready(UnsafeMutablePointer<FCGX_Request>)
    }

    let listenFD: Int32
    private let epollFD: Int32
    /// Every connection open in this process, idle in the set or owned by a loop, by the address
    /// of its `FCGX_Request`; what is left when the last loop is gone is closed in `deinit`.
    private let open = Mutex<Set<UInt>>([])
    private let listening: Mutex<Bool>

    /// - Parameter listenFD: the listening socket; 0 by the FastCGI convention. Set to `O_NONBLOCK`
    ///   (a flag of the socket, shared with every process holding it).
    public init(listenFD: Int32 = 0) throws(FastCGIError) {
        let flags = fcntl(listenFD, F_GETFL)
        guard flags >= 0, fcntl(listenFD, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .acceptFailed(errno: errno)
        }
        let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else {
            throw .cannotCreateEpoll(errno: errno)
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
        event.data.u64 = 0
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, listenFD, &event) == 0 else {
            let failure = errno  // EPERM: not a socket (a file or device cannot be polled this way)
            close(epollFD)
            throw .acceptFailed(errno: failure)
        }
        self.listenFD = listenFD
        self.epollFD = epollFD
        listening = Mutex(true)
    }

    deinit {
        for address in open.withLock({ $0 }) {
            guard let request = UnsafeMutablePointer<FCGX_Request>(bitPattern: address) else { continue }
            if request.pointee.ipcFd >= 0 {
                shutdown(request.pointee.ipcFd, Int32(SHUT_RDWR))
            }
            FCGX_Free(request, 1)
            request.deallocate()
        }
        close(epollFD)
    }

    /// Connections open in this process: idle between requests, or owned by a loop.
    public var count: Int { open.withLock { $0.count } }

    /// Puts the listening socket in the set, or takes it out (a stopping worker takes no new
    /// connection; neither does one at its maximum). Idempotent.
    func setListening(_ wanted: Bool) {
        listening.withLock { current in
            guard current != wanted else { return }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
            event.data.u64 = 0
            if epoll_ctl(epollFD, wanted ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listenFD, &event) == 0 {
                current = wanted
            }
        }
    }

    /// Waits at most `timeout` for a new connection or a request on a held connection.
    /// `nil` on timeout or a stray signal.
    func next(timeout: Duration) -> Event? {
        var event = epoll_event()
        let milliseconds = Int32(clamping: max(0, timeout.components.seconds * 1000
            + timeout.components.attoseconds / 1_000_000_000_000_000))
        guard epoll_wait(epollFD, &event, 1, milliseconds) == 1 else { return nil }
        guard let request = UnsafeMutablePointer<FCGX_Request>(bitPattern: UInt(event.data.u64)) else {
            return .newConnection
        }
        return .ready(request)
    }

    /// A loop accepted a new connection with `request`: it is now open, owned by that loop.
    func opened(_ request: UnsafeMutablePointer<FCGX_Request>) {
        _ = open.withLock { $0.insert(UInt(bitPattern: request)) }
    }

    /// The owner closed the connection of `request` (or libfcgi did): no longer open.
    func closed(_ request: UnsafeMutablePointer<FCGX_Request>) {
        _ = open.withLock { $0.remove(UInt(bitPattern: request)) }
    }

    /// The owner hands an open connection back between requests: the next loop to wait gets it
    /// when nginx sends on it. A connection libfcgi replaced under the same request (it accepts
    /// anew after a peer's close) is not in the set yet and is added.
    func returnConnection(_ request: UnsafeMutablePointer<FCGX_Request>) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue
        event.data.u64 = UInt64(UInt(bitPattern: request))
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, request.pointee.ipcFd, &event) != 0 && errno == ENOENT {
            epoll_ctl(epollFD, EPOLL_CTL_ADD, request.pointee.ipcFd, &event)
        }
    }
}
