import CFastCGI

#if canImport(Glibc)
import Glibc
#endif

/// One request loop's side of libfcgi: hands out the next request from the connections its worker
/// process holds (`KeptConnections`, shared by all the process's loops) or from a new one.
///
/// Make one per loop and use it from that loop's thread only. Each connection has its own libfcgi
/// `FCGX_Request`; each `FastCGIRequest` handed out is a view on the one this loop owns at the
/// moment, valid until the request is answered or the next `accept()`. What to wait for is decided
/// by `RequestLoopStateMachine`. A ready connection is read with libfcgi's blocking reads: nginx
/// writes a request's records at once (and, with `fastcgi_request_buffering on`, has the body).
public final class FastCGIResponder {
    /// How often a waiting loop looks at the stop latch: the latch is not in the epoll set (an
    /// always-readable descriptor there would be handed to one loop at a time, over and over).
    static let stopCheckInterval = Duration.milliseconds(100)

    private let connections: KeptConnections
    private let stopLatch: StopLatch
    private var stateMachine: RequestLoopStateMachine
    /// Requests with no connection, reused for the next accepted one.
    private var spare: [UnsafeMutablePointer<FCGX_Request>] = []
    /// The request being answered, and its number, so a stale `FastCGIRequest` can tell it is stale.
    private var open: UnsafeMutablePointer<FCGX_Request>?
    private var lastRequestNumber: UInt64 = 0
    private var openRequestNumber: UInt64?
    /// Reused for every response's header block, so answering does not allocate.
    private var headerBlock: [UInt8] = []

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
    ///   - connections: the process's connection set, shared by all its loops.
    ///   - stopLatch: tripped when the loops should stop; shared by all loops of a process.
    ///   - drainTimeout: how long a stopping loop keeps serving kept-alive connections for nginx to
    ///     close them (`RequestLoopStateMachine`); longer than nginx's upstream `keepalive_timeout`.
    ///   - maximumConnections: the most connections the process holds before it leaves new ones
    ///     to other processes.
    public init(
        connections: KeptConnections, stopLatch: StopLatch, drainTimeout: Duration = .seconds(3),
        maximumConnections: Int = 512
    ) throws(FastCGIError) {
        try Self.initializeLibrary()
        self.connections = connections
        self.stopLatch = stopLatch
        stateMachine = RequestLoopStateMachine(drainTimeout: drainTimeout, maximumConnections: maximumConnections)
        headerBlock.reserveCapacity(512)
    }

    deinit {
        if let open {
            FCGX_Finish_r(open)
            handBack(open)
        }
        for request in spare {
            FCGX_Free(request, 1)
            request.deallocate()
        }
    }

    /// Waits until the next request has arrived with all its parameters, on a held connection or a
    /// new one, finishing the open request first.
    ///
    /// - Returns: the request, or `nil` once the stop latch is tripped and the process holds no
    ///   connection any more or the drain deadline passed (`RequestLoopStateMachine`).
    /// - Throws: `FastCGIError.acceptFailed` when the listening descriptor cannot accept at all.
    public func accept() throws(FastCGIError) -> FastCGIRequest? {
        if openRequestNumber != nil {
            finishOpenRequest()
        }
        while true {
            let stopping = stopLatch.isTripped
            switch stateMachine.nextStep(heldConnections: connections.count, stopping: stopping, now: .now) {
            case .wait(let acceptingConnections, let timeout):
                connections.setListening(acceptingConnections)
                let wait = min(timeout ?? Self.stopCheckInterval, Self.stopCheckInterval)
                switch connections.next(timeout: wait) {
                case .newConnection:
                    guard !stopping else { continue }  // taken out of the set: a stale wake-up
                    if let request = try read(spare.popLast() ?? Self.makeRequest(listenFD: connections.listenFD), isNew: true) {
                        return request
                    }
                case .ready(let request):
                    if stopping && peerHasClosed(request.pointee.ipcFd) {
                        close(request)  // libfcgi would see the end of file and accept anew
                    } else if let request = try read(request, isNew: false) {
                        return request
                    }
                case nil:
                    continue
                }
            case .drainTimedOut, .stop:
                // Connections still held are closed when the last loop lets go of `connections`.
                return nil
            }
        }
    }

    /// `FCGX_Accept_r`: on a held connection it reads the next request (or sees nginx's close, then
    /// libfcgi closes too and tries the non-blocking listener once); without a connection it
    /// accepts one and reads its request. `nil` when there was none.
    private func read(_ request: UnsafeMutablePointer<FCGX_Request>, isNew: Bool) throws(FastCGIError) -> FastCGIRequest? {
        let result = FCGX_Accept_r(request)
        guard result >= 0 else {
            if !isNew {
                connections.closed(request)
            }
            spare.append(request)
            switch -result {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM:
                return nil
            default:
                throw .acceptFailed(errno: -result)
            }
        }
        if isNew {
            connections.opened(request)
        }
        open = request
        lastRequestNumber += 1
        openRequestNumber = lastRequestNumber
        return FastCGIRequest(responder: self, number: lastRequestNumber)
    }

    /// Whether the peer of a readable connection has closed it (end of file or an error) rather
    /// than sent data; looks without consuming.
    private func peerHasClosed(_ connection: Int32) -> Bool {
        var byte: UInt8 = 0
        return recv(connection, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) <= 0
    }

    /// Closes a connection this loop owns, with no request in flight, and keeps its request for
    /// reuse. With both directions shut down, libfcgi's lingering close (it waits up to 2 s for the
    /// peer to close first) ends at once.
    private func close(_ request: UnsafeMutablePointer<FCGX_Request>) {
        if request.pointee.ipcFd >= 0 {
            shutdown(request.pointee.ipcFd, Int32(SHUT_RDWR))
        }
        FCGX_Free(request, 1)
        connections.closed(request)
        spare.append(request)
    }

    /// After `FCGX_Finish_r`: a connection nginx keeps goes back to the set, else the request
    /// becomes a spare.
    private func handBack(_ request: UnsafeMutablePointer<FCGX_Request>) {
        if request.pointee.ipcFd >= 0 {
            connections.returnConnection(request)
        } else {
            connections.closed(request)
            spare.append(request)
        }
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
    /// A connection nginx keeps alive goes back to the set, also when stopping
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
        handBack(request)
    }
}

@available(*, unavailable)
extension FastCGIResponder: Sendable {}
