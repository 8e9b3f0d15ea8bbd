import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// State shared with the worker's stop handler. Global because a signal handler cannot reach
// anything else; atomics because that is what a handler may safely touch.
// `installStopHandlers` writes all three before any handler exists, so the handler never runs
// their lazy initialisation.
private let stopRequested = Atomic<Bool>(false)
private let stopListenFD = Atomic<Int32>(0)
private let stopNullFD = Atomic<Int32>(-1)

/// SIGTERM/SIGINT in a worker: note the stop and make the listening descriptor useless. Keeps errno intact.
private func workerStopHandler(_ signal: Int32) {
    let savedErrno = errno
    stopRequested.store(true, ordering: .sequentiallyConsistent)
    _ = dup2(stopNullFD.load(ordering: .relaxed), stopListenFD.load(ordering: .relaxed))
    errno = savedErrno
}

/// The worker's side of the pool: how a worker process learns it should stop.
///
/// ## How a stop gets a worker out of `accept()` (verified against libfcgi 2.4.2)
/// `FCGX_Accept_r` calls `OS_Accept`, which retries `accept(2)` on `EINTR` (the responder does not
/// set `FCGI_FAIL_ACCEPT_ON_INTR`) and returns failure on any errno other than the transient
/// network ones (`ECONNABORTED`, `EPROTO`, `ECONNRESET`, ...). Debian's build takes no accept lock,
/// so workers block in `accept` directly. The stop handler is installed with `SA_RESTART`, sets
/// `shouldStop`, and `dup2`s `/dev/null` over the listening descriptor (fd 0):
/// - a worker blocked in `accept` has the call restarted on fd 0, now `/dev/null`, gets
///   `ENOTSOCK` and fails; `FastCGIResponder.accept()` returns `nil`;
/// - a signal that lands just before `accept` (the window libfcgi's own SIGUSR1 shutdown flag has)
///   makes that `accept` fail at once for the same reason;
/// - a worker waiting for the next request on a connection nginx keeps alive (in
///   `FastCGIResponder`, which polls that connection together with fd 0) is interrupted, or finds
///   fd 0 readable because /dev/null always is; it closes the connection and `accept` fails as above;
/// - a request already accepted runs on its own connection, not fd 0, and is finished.
///   Other workers and the supervisor keep the real socket.
///
/// `SA_RESTART` matters: libfcgi reads a new connection's parameters inside `FCGX_Accept_r`, after
/// `accept` returned, and drops the connection when such a `read` fails with `EINTR` (nginx then
/// answers 502). Restarted, the read completes and the request is served. Calls that are never
/// restarted (`poll`) still return `EINTR`; serve each request inside `deferringStop` so that no
/// C library sees one while it answers.
///
/// The signal must reach the thread blocked in `accept`. Linux delivers a signal sent to the
/// process to its main thread unless that thread blocks it, so run the accept loop on the main
/// thread (or block SIGTERM and SIGINT in any other thread).
public enum WorkerLifecycle {
    /// Set by the supervisor in each worker's environment: the supervisor's pid.
    public static let supervisorPIDVariable = "WORKERPOOL_SUPERVISOR_PID"
    /// Set by the supervisor in each worker's environment: the worker's slot, 0..<workerCount.
    public static let slotVariable = "WORKERPOOL_SLOT"

    /// This worker's slot in the pool, for log lines; `nil` when not started by a `Supervisor`.
    public static var slot: Int? {
        getenv(slotVariable).flatMap { Int(String(cString: $0)) }
    }

    /// Whether SIGTERM or SIGINT arrived since `installStopHandlers`.
    public static var shouldStop: Bool {
        stopRequested.load(ordering: .sequentiallyConsistent)
    }

    /// Installs the SIGTERM and SIGINT handlers described above and unblocks both signals.
    /// Traps if /dev/null cannot be opened: a system without it cannot run workers sensibly.
    /// - Parameter listenFD: the descriptor to replace with `/dev/null`; 0 by the FastCGI convention.
    public static func installStopHandlers(listenFD: Int32 = 0) {
        let nullFD = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard nullFD >= 0 else {
            fatalError("cannot open /dev/null: \(errorString(errno))")
        }
        stopRequested.store(false, ordering: .sequentiallyConsistent)
        stopListenFD.store(listenFD, ordering: .sequentiallyConsistent)
        let previousNullFD = stopNullFD.exchange(nullFD, ordering: .sequentiallyConsistent)
        if previousNullFD >= 0 {
            close(previousNullFD)
        }

        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for signal in [SIGTERM, SIGINT] {
            sigaddset(&stopSignals, signal)
            var action = sigaction()
            action.__sigaction_handler.sa_handler = workerStopHandler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART  // see above: a read inside FCGX_Accept_r must not fail
            sigaction(signal, &action, nil)  // cannot fail for these signals
        }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
    }

    /// Asks the kernel to send SIGTERM when the supervisor dies (`PR_SET_PDEATHSIG`), so no worker
    /// outlives it, and sends SIGTERM to itself if the supervisor already died before that.
    /// Call it first thing in the worker, after `installStopHandlers`.
    public static func stopWhenSupervisorDies() {
        _ = GlibcExtensions.setParentDeathSignal(SIGTERM)
        guard let supervisor = getenv(supervisorPIDVariable).flatMap({ pid_t(String(cString: $0)) }) else {
            return  // not started by a Supervisor
        }
        if getppid() != supervisor {
            raise(SIGTERM)
        }
    }

    /// Runs `body` with SIGTERM and SIGINT held back; one that arrives meanwhile takes effect when
    /// `body` returns. Costs two `sigprocmask` calls.
    public static func deferringStop<Result, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &stopSignals, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        return try body()
    }
}
