import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// The descriptor the stop handler writes to. Global because a signal handler cannot reach
// anything else; atomic because that is what a handler may safely touch. `installStopHandlers`
// writes it before any handler exists, so the handler never runs its lazy initialisation.
private let stopNotificationFD = Atomic<Int32>(-1)

/// SIGTERM/SIGINT in a worker: one byte to the stop descriptor (the self-pipe trick). Keeps errno intact.
private func workerStopHandler(_ signal: Int32) {
    let savedErrno = errno
    var byte: UInt8 = 1
    _ = write(stopNotificationFD.load(ordering: .relaxed), &byte, 1)
    errno = savedErrno
}

/// The worker's side of the pool: how a worker process learns it should stop.
///
/// ## How a stop reaches a worker's request loops
/// A worker runs its request loops on threads and keeps its main thread for signals:
/// 1. `installStopHandlers(notifying:)` makes SIGTERM and SIGINT write a byte to a descriptor,
///    the write end of a pipe whose read end every loop polls beside its socket (a `StopLatch`
///    in the FastCGI module). A pipe nobody reads stays readable, so one write wakes all loops.
/// 2. The loops start inside `withStopSignalsBlocked`, so they inherit a mask that blocks both
///    signals: the kernel delivers them to the main thread, and no `EINTR` ever reaches
///    libfcgi, libpq or libmemcached in a loop (libfcgi drops a connection whose read fails with
///    `EINTR`, and its writes do not retry it). The handler uses `SA_RESTART` for the main thread.
/// 3. The main thread waits on the pipe, then joins the loops; each finishes the request in hand.
///
/// Install the handlers before `FCGX_Init` (`FastCGIResponder.initializeLibrary`): libfcgi installs
/// its own SIGTERM handler only when the disposition is still the default.
public enum WorkerLifecycle {
    /// Set by the supervisor in each worker's environment: the supervisor's pid.
    public static let supervisorPIDVariable = "WORKERPOOL_SUPERVISOR_PID"
    /// Set by the supervisor in each worker's environment: the worker's slot, 0..<workerCount.
    public static let slotVariable = "WORKERPOOL_SLOT"

    /// Set by the supervisor when the pool has a scoreboard: the worker's entry in it.
    public static let scoreboardEntryVariable = "WORKERPOOL_SCOREBOARD_ENTRY"

    /// This worker's scoreboard entry; `nil` without a scoreboard.
    public static var scoreboardEntry: Int? {
        getenv(scoreboardEntryVariable).flatMap { Int(String(cString: $0)) }
    }

    /// This worker's slot in the pool, for log lines; `nil` when not started by a `Supervisor`.
    public static var slot: Int? {
        getenv(slotVariable).flatMap { Int(String(cString: $0)) }
    }

    /// Makes SIGTERM and SIGINT write one byte to `descriptor` (non-blocking, so a full pipe never
    /// blocks the handler), and unblocks both in the calling thread.
    /// - Parameter descriptor: the write end of the pipe the worker waits on; it must stay open.
    public static func installStopHandlers(notifying descriptor: Int32) {
        stopNotificationFD.store(descriptor, ordering: .sequentiallyConsistent)
        for signal in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = workerStopHandler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)  // cannot fail for these signals
        }
        var stopSignals = Self.stopSignals
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
    }

    /// Runs `body` with SIGTERM and SIGINT blocked in the calling thread; threads it starts keep
    /// them blocked for their whole life, so the signals go to the threads that do not block them.
    public static func withStopSignalsBlocked<Result, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var stopSignals = Self.stopSignals
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &stopSignals, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        return try body()
    }

    private static var stopSignals: sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        return signals
    }

    /// Asks the kernel to send SIGTERM when the supervisor dies (`PR_SET_PDEATHSIG`), so no worker
    /// outlives it, and sends SIGTERM to itself if the supervisor already died before that.
    /// Call it first thing in the worker, right after `installStopHandlers`.
    public static func stopWhenSupervisorDies() {
        _ = GlibcExtensions.setParentDeathSignal(SIGTERM)
        guard let supervisor = getenv(supervisorPIDVariable).flatMap({ pid_t(String(cString: $0)) }) else {
            return  // not started by a Supervisor
        }
        if getppid() != supervisor {
            raise(SIGTERM)
        }
    }
}
