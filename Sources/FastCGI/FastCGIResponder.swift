import CFastCGI

#if canImport(Glibc)
import Glibc
#endif

/// One request loop's side of libfcgi: takes new connections from a listening socket it may share
/// with other loops (threads and processes), holds every connection nginx keeps alive, and hands
/// out the next request from whichever of them has one.
///
/// Make one per loop and use it from that loop's thread only. Each held connection has its own
/// libfcgi `FCGX_Request`; each `FastCGIRequest` handed out is a view on one of them, valid until
/// the request is answered or the next `accept()`. What to wait for is decided by
/// `RequestLoopStateMachine`.
///
/// Several responders may accept on one socket at once: libfcgi keeps per-request state in the
/// caller's `FCGX_Request`, and Debian's build takes no accept lock. The listening socket is put
/// in non-blocking mode (a flag of the socket itself, shared with every process holding it), so
/// a loop that loses the race for a new connection gets `EAGAIN` and polls again instead of
/// blocking in `accept(2)` where no stop could reach it. A readable connection is read with
/// libfcgi's blocking reads: nginx writes a request's records at once.
public final class FastCGIResponder {
    /// What one `poll` found ready, served in this order before the next `poll`.
    private enum Ready {
        case connection(UnsafeMutablePointer<FCGX_Request>)
        case listener
    }

    private let listenFD: Int32
    private let stopLatch: StopLatch
    private var stateMachine: RequestLoopStateMachine
    /// Connections held between requests (libfcgi's `ipcFd >= 0`), not counting the open one.
    private var held: [UnsafeMutablePointer<FCGX_Request>] = []
    /// Requests with no connection, reused for the next accepted one.
    private var spare: [UnsafeMutablePointer<FCGX_Request>] = []
    private var ready: [Ready] = []
    private var readyIndex = 0
    private var pollSet: [pollfd] = []
    /// The request being answered, and its number, so a stale `FastCGIRequest` can tell it is stale.
    private var open: UnsafeMutablePointer<FCGX_Request>?
    private var lastRequestNumber: UInt64 = 0
    private var openRequestNumber: UInt64?
    /// Reused for every response's header block, so answering does not allocate.
    private var headerBlock: [UInt8] = []

    /// Connections this loop holds: kept alive between requests, plus the open request's.
    public var connectionCount: Int { held.count + (open.map { $0.pointee.ipcFd >= 0 ? 1 : 0 } ?? 0) }

    /// Initialises libfcgi. Call it on the main thread before the first responder thread starts:
    /// `FCGX_Init` is not thread-safe, and it installs libfcgi's SIGTERM handler unless the
    /// process already has its own (so install yours first). Later calls do nothing.
    public static func initializeLibrary() throws(FastCGIError) {
        let initialized = FCGX_Init()
        guard initialized == 0 else {
            throw .libraryInitializationFailed(code: initialized)
        }
    }

    /// - Parameters:
    ///   - listenFD: the listening socket; 0 by the FastCGI convention (`FCGI_LISTENSOCK_FILENO`).
    ///   - stopLatch: tripped when the loop should stop; shared by all loops of a process.
    ///   - drainTimeout: how long a stopping loop keeps serving its kept-alive connections for nginx
    ///     to close them (`RequestLoopStateMachine`); longer than nginx's upstream `keepalive_timeout`.
    ///   - maximumConnections: the most connections this loop holds at once.
    public init(
        listenFD: Int32 = 0, stopLatch: StopLatch, drainTimeout: Duration = .seconds(3), maximumConnections: Int = 256
    ) throws(FastCGIError) {
        try Self.initializeLibrary()
        let flags = fcntl(listenFD, F_GETFL)
        guard flags >= 0, fcntl(listenFD, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .acceptFailed(errno: errno)
        }
        self.listenFD = listenFD
        self.stopLatch = stopLatch
        stateMachine = RequestLoopStateMachine(drainTimeout: drainTimeout, maximumConnections: maximumConnections)
        headerBlock.reserveCapacity(512)
    }

    deinit {
        if let open {
            FCGX_Finish_r(open)
            spare.append(open)
        }
        for request in held + spare {
            FCGX_Free(request, 1)  // closes a kept-alive connection
            request.deallocate()
        }
    }

    /// Waits until the next request has arrived with all its parameters, on a held connection or a
    /// new one, finishing the open request first.
    ///
    /// - Returns: the request, or `nil` once the stop latch is tripped and this loop holds no
    ///   connection any more (held ones are drained first, see `RequestLoopStateMachine`).
    /// - Throws: `FastCGIError.acceptFailed` when the listening descriptor cannot accept at all.
    public func accept() throws(FastCGIError) -> FastCGIRequest? {
        if openRequestNumber != nil {
            finishOpenRequest()
        }
        while true {
            while readyIndex < ready.count {
                let next = ready[readyIndex]
                readyIndex += 1
                if let request = try read(next) { return request }
            }
            switch stateMachine.nextStep(heldConnections: held.count, stopping: stopLatch.isTripped, now: .now) {
            case .wait(let acceptingConnections, let timeout):
                waitForReadiness(acceptingConnections: acceptingConnections, timeout: timeout)
            case .closeHeldConnections:
                for request in held {
                    close(request)
                }
                held.removeAll()
            case .stop:
                return nil
            }
        }
    }

    /// Reads the next request from a ready connection (or a new one from the listener).
    /// `nil` when there was none: the peer closed, or another loop took the new connection.
    private func read(_ source: Ready) throws(FastCGIError) -> FastCGIRequest? {
        let request: UnsafeMutablePointer<FCGX_Request>
        switch source {
        case .listener:
            guard !stopLatch.isTripped else { return nil }
            request = spare.popLast() ?? Self.makeRequest(listenFD: listenFD)
        case .connection(let connection):
            request = connection
            if stopLatch.isTripped && peerHasClosed(connection.pointee.ipcFd) {
                close(request)  // without this libfcgi would see the end of file and accept anew
                return nil
            }
        }
        // On a held connection: its next request, or nginx's close (then libfcgi closes too and
        // tries the non-blocking listener once). Without a connection: accept, then read.
        let result = FCGX_Accept_r(request)
        guard result >= 0 else {
            if request.pointee.ipcFd >= 0 {
                held.append(request)  // cannot happen after a failure, but never lose a connection
            } else {
                spare.append(request)
            }
            switch -result {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM:
                return nil
            default:
                throw .acceptFailed(errno: -result)
            }
        }
        open = request
        lastRequestNumber += 1
        openRequestNumber = lastRequestNumber
        return FastCGIRequest(responder: self, number: lastRequestNumber)
    }

    /// Polls the stop latch, the held connections and, if `acceptingConnections`, the listening
    /// socket. Fills `ready` with the held connections that became readable (taken out of `held`
    /// until their request is answered), then the listener. A timeout or a stray signal leaves it empty.
    private func waitForReadiness(acceptingConnections: Bool, timeout: Duration?) {
        pollSet.removeAll(keepingCapacity: true)
        pollSet.append(pollfd(fd: stopLatch.descriptor, events: Int16(POLLIN), revents: 0))
        if acceptingConnections {
            pollSet.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0))
        }
        let firstConnection = pollSet.count
        for request in held {
            pollSet.append(pollfd(fd: request.pointee.ipcFd, events: Int16(POLLIN), revents: 0))
        }
        let milliseconds = timeout.map { Int32(clamping: max(1, $0.components.seconds * 1000
            + $0.components.attoseconds / 1_000_000_000_000_000)) } ?? -1
        ready.removeAll(keepingCapacity: true)
        readyIndex = 0
        guard poll(&pollSet, nfds_t(pollSet.count), milliseconds) > 0 else { return }

        if pollSet[0].revents != 0 {
            stopLatch.trip()  // it may have been tripped by a write alone (a signal handler)
        }
        var stillIdle = 0
        for (offset, request) in held.enumerated() {
            if pollSet[firstConnection + offset].revents != 0 {
                ready.append(.connection(request))
            } else {
                held[stillIdle] = request
                stillIdle += 1
            }
        }
        held.removeLast(held.count - stillIdle)
        if acceptingConnections && pollSet[1].revents != 0 {
            ready.append(.listener)
        }
    }

    /// Whether the peer of a readable connection has closed it (end of file or an error) rather
    /// than sent data; looks without consuming.
    private func peerHasClosed(_ connection: Int32) -> Bool {
        var byte: UInt8 = 0
        return recv(connection, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) <= 0
    }

    /// Closes a connection with no request in flight and keeps its request for reuse. With both
    /// directions shut down, libfcgi's lingering close (it waits up to 2 s for the peer to close
    /// first) ends at once.
    private func close(_ request: UnsafeMutablePointer<FCGX_Request>) {
        if request.pointee.ipcFd >= 0 {
            shutdown(request.pointee.ipcFd, Int32(SHUT_RDWR))
        }
        FCGX_Free(request, 1)
        spare.append(request)
    }

    private static func makeRequest(listenFD: Int32) -> UnsafeMutablePointer<FCGX_Request> {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        FCGX_InitRequest(request, listenFD, 0)
        return request
    }

    // MARK: - Used by FastCGIRequest

    /// Runs `body` with libfcgi's request if request `number` is still the open one.
    func withOpenRequest<Result>(
        _ number: UInt64,
        _ body: (UnsafeMutablePointer<FCGX_Request>) -> Result
    ) -> Result? {
        guard openRequestNumber == number, let open else { return nil }
        return body(open)
    }

    func respond(to number: UInt64, status: Int, headers: [(String, String)], body: [UInt8]) -> Bool {
        guard openRequestNumber == number, let open else { return false }
        headerBlock.removeAll(keepingCapacity: true)
        ResponseHead.write(status: status, headers: headers, bodyCount: body.count, into: &headerBlock)

        let output = open.pointee.out
        headerBlock.withUnsafeBytes { bytes in
            _ = FCGX_PutStr(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count), output)
        }
        body.withUnsafeBytes { bytes in
            _ = FCGX_PutStr(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count), output)
        }
        finish(number)
        return true
    }

    func finish(_ number: UInt64) {
        guard openRequestNumber == number else { return }
        finishOpenRequest()
    }

    /// Ends the open request with `FCGX_Finish_r`, which writes FCGI_END_REQUEST.
    ///
    /// On a connection that is not kept alive libfcgi then closes lingeringly: it shuts down its
    /// sending side and waits for the web server to close first, so that unread input cannot make
    /// the close a reset that loses the response. The worker sits idle until nginx gets round to it.
    /// Reading the rest of the input (usually just the empty end-of-stdin record) and shutting down
    /// the receiving side keeps that guarantee and ends libfcgi's wait at once.
    /// A connection nginx keeps alive goes back to the held ones, also when stopping
    /// (`RequestLoopStateMachine` says why).
    private func finishOpenRequest() {
        openRequestNumber = nil
        guard let request = open else { return }
        open = nil
        let connection = request.pointee.ipcFd  // libfcgi's own fields
        if connection >= 0 && request.pointee.keepConnection == 0 {
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { scratch in
                while FCGX_GetStr(scratch.baseAddress, 4096, request.pointee.in) == 4096 {}
            }
            shutdown(connection, Int32(SHUT_RD))
        }
        FCGX_Finish_r(request)
        if request.pointee.ipcFd >= 0 {
            held.append(request)
        } else {
            spare.append(request)
        }
    }
}

@available(*, unavailable)
extension FastCGIResponder: Sendable {}
