import CFastCGI

#if canImport(Glibc)
import Glibc
#endif

/// Accepts FastCGI requests on a listening socket, one at a time.
///
/// Make one per worker process and use it from one thread. It owns libfcgi's request state;
/// each `FastCGIRequest` it hands out is a view on that state, valid until the request is
/// answered or the next `accept()`.
public final class FastCGIResponder {
    private let raw: UnsafeMutablePointer<FCGX_Request>
    private let listenFD: Int32
    /// Numbers the requests handed out, so a stale `FastCGIRequest` can tell it is stale.
    private var lastRequestNumber: UInt64 = 0
    private var openRequestNumber: UInt64?
    /// Reused for every response's header block, so answering does not allocate.
    private var headerBlock: [UInt8] = []

    /// The errno behind the last failed `accept()`, for logging. `ENOTSOCK` is the usual one when
    /// a stop was requested and the listening descriptor was replaced (see `WorkerLifecycle`).
    public private(set) var lastAcceptError: Int32 = 0

    /// - Parameter listenFD: the listening socket; 0 by the FastCGI convention (`FCGI_LISTENSOCK_FILENO`).
    public init(listenFD: Int32 = 0) throws(FastCGIError) {
        let initialized = FCGX_Init()
        guard initialized == 0 else {
            throw .libraryInitializationFailed(code: initialized)
        }
        self.listenFD = listenFD
        raw = .allocate(capacity: 1)
        // No FCGI_FAIL_ACCEPT_ON_INTR: a stray signal must not end the worker. Stopping works by
        // making the listening descriptor unusable instead; see `WorkerLifecycle.installStopHandlers`.
        FCGX_InitRequest(raw, listenFD, 0)
        headerBlock.reserveCapacity(512)
    }

    deinit {
        FCGX_Finish_r(raw)
        FCGX_Free(raw, 1)  // also closes a kept-alive connection
        raw.deallocate()
    }

    /// Blocks until the next request has arrived with all its parameters: on a kept-alive
    /// connection, that connection's next request or a new connection, whichever comes first.
    ///
    /// Returns `nil` when libfcgi gives up accepting, which is how a worker learns the listening
    /// descriptor was closed or replaced for shutdown; `lastAcceptError` says why.
    /// A request still open is finished first.
    public func accept() -> FastCGIRequest? {
        if openRequestNumber != nil {
            finishOpenRequest()
        }
        releaseKeptConnectionIfOthersWait()
        let result = FCGX_Accept_r(raw)
        guard result >= 0 else {
            lastAcceptError = -result
            return nil
        }
        lastRequestNumber += 1
        openRequestNumber = lastRequestNumber
        return FastCGIRequest(responder: self, number: lastRequestNumber)
    }

    /// libfcgi serves one connection at a time, and on a connection the web server keeps alive
    /// (nginx `fastcgi_keep_conn on`) it blocks reading that connection's next request. nginx
    /// opens a new connection whenever none of its idle ones is at hand, so it can hold more
    /// connections than there are workers; if every worker waits on a kept-alive connection nginx
    /// is not using, new connections sit in the backlog unaccepted and their requests stall.
    /// So wait for the kept-alive connection and the listening socket together, and if a new
    /// connection (or a signal) comes first, close the kept-alive one; nginx notices and drops it.
    /// Several idle workers may let theirs go for one new connection: a little churn, never a stall.
    /// Once a stop replaced the listening descriptor with /dev/null, which always polls readable,
    /// this lets the kept-alive connection go at once and `FCGX_Accept_r` fails.
    private func releaseKeptConnectionIfOthersWait() {
        let kept = raw.pointee.ipcFd  // libfcgi's own field, read only: the open connection or -1
        guard kept >= 0 else { return }
        let keptConnectionIsReady = withUnsafeTemporaryAllocation(of: pollfd.self, capacity: 2) { descriptors in
            descriptors[0] = pollfd(fd: kept, events: Int16(POLLIN), revents: 0)
            descriptors[1] = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            return poll(descriptors.baseAddress, 2, -1) > 0 && descriptors[0].revents != 0
        }
        if keptConnectionIsReady {
            return  // the next request (or the web server's close) is there: libfcgi reads it
        }
        // No response is in flight, so skip libfcgi's lingering close (it waits up to 2 s for the
        // peer to close first): with both directions shut down, that wait ends at once.
        shutdown(kept, Int32(SHUT_RDWR))
        FCGX_Free(raw, 1)
    }

    // MARK: - Used by FastCGIRequest

    /// Runs `body` with libfcgi's request if request `number` is still the open one.
    func withOpenRequest<Result>(
        _ number: UInt64,
        _ body: (UnsafeMutablePointer<FCGX_Request>) -> Result
    ) -> Result? {
        guard openRequestNumber == number else { return nil }
        return body(raw)
    }

    func respond(to number: UInt64, status: Int, headers: [(String, String)], body: [UInt8]) -> Bool {
        guard openRequestNumber == number else { return false }
        headerBlock.removeAll(keepingCapacity: true)
        ResponseHead.write(status: status, headers: headers, bodyCount: body.count, into: &headerBlock)

        let output = raw.pointee.out
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
    private func finishOpenRequest() {
        openRequestNumber = nil
        let connection = raw.pointee.ipcFd  // libfcgi's own fields, read only
        if connection >= 0 && raw.pointee.keepConnection == 0 {
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { scratch in
                while FCGX_GetStr(scratch.baseAddress, 4096, raw.pointee.in) == 4096 {}
            }
            shutdown(connection, Int32(SHUT_RD))
        }
        FCGX_Finish_r(raw)
    }
}

@available(*, unavailable)
extension FastCGIResponder: Sendable {}
