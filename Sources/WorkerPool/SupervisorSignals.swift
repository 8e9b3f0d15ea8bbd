import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Write end of the running supervisor's wake-up pipe, or -1 when no supervisor runs.
///
/// The one piece of global state in the supervisor, and unavoidable: a signal handler cannot reach
/// an instance. It is an atomic, which is safe to read in a handler; `SupervisorSignals.install`
/// touches it before any handler exists, so the handler never runs its lazy initialisation.
private let wakeupWriteFD = Atomic<Int32>(-1)

/// Writes the signal number into the wake-up pipe: all a handler may do. Keeps errno intact.
private func supervisorSignalHandler(_ signal: Int32) {
    let savedErrno = errno
    var byte = UInt8(truncatingIfNeeded: signal)
    _ = write(wakeupWriteFD.load(ordering: .relaxed), &byte, 1)
    errno = savedErrno
}

/// Turns SIGTERM, SIGINT, SIGHUP and SIGCHLD into bytes on a pipe that the supervisor loop polls
/// (the self-pipe pattern).
///
/// Unlike blocking the signals and calling `sigtimedwait`, this works whatever other threads the
/// process has: a signal delivered to any thread still wakes the loop. Handlers use `SA_RESTART`,
/// so the supervisor's own system calls are not interrupted. Only one supervisor can run per process.
final class SupervisorSignals {
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGCHLD]

    private let readFD: Int32
    private let writeFD: Int32
    private var previousActions: [(signal: Int32, action: sigaction)] = []

    static func install() throws(WorkerPoolError) -> SupervisorSignals {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw .cannotCreateWakeupPipe(errno: errno)
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        }
        let claimed = wakeupWriteFD.compareExchange(
            expected: -1, desired: descriptors[1], ordering: .sequentiallyConsistent
        ).exchanged
        precondition(claimed, "only one Supervisor can run per process")

        let signals = SupervisorSignals(readFD: descriptors[0], writeFD: descriptors[1])
        for signal in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = supervisorSignalHandler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART | (signal == SIGCHLD ? SA_NOCLDSTOP : 0)
            var previous = sigaction()
            guard sigaction(signal, &action, &previous) == 0 else {
                let failure = errno
                signals.uninstall()
                throw .cannotInstallSignalHandler(signal: signal, errno: failure)
            }
            signals.previousActions.append((signal, previous))
        }
        // The process may have been started with these blocked; they must reach the handlers.
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in handled { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        return signals
    }

    private init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writeFD = writeFD
    }

    /// Restores the previous dispositions and closes the pipe.
    func uninstall() {
        for (signal, action) in previousActions.reversed() {
            var action = action
            sigaction(signal, &action, nil)
        }
        previousActions = []
        wakeupWriteFD.store(-1, ordering: .sequentiallyConsistent)
        close(readFD)
        close(writeFD)
    }

    /// Waits until a signal arrives or `timeout` passes; returns the signals that arrived, in order.
    func wait(timeout: Duration) -> [Int32] {
        var descriptor = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, Int32(clamping: timeout.roundedUpMilliseconds))  // EINTR is just a wake-up
        var signals: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let count = read(readFD, &buffer, buffer.count)
            guard count > 0 else { break }
            signals += buffer[..<count].map { Int32($0) }
        }
        return signals
    }

    /// Wakes the running supervisor without a signal (it reads as signal 0); does nothing when none runs.
    static func wakeRunningSupervisor() {
        supervisorSignalHandler(0)
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a deadline is not polled for a moment too early.
    var roundedUpMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        guard seconds < Int64.max / 1000 else { return Int64.max }
        let (milliseconds, remainder) = attoseconds.quotientAndRemainder(dividingBy: attosecondsPerMillisecond)
        return max(0, seconds * 1000 + milliseconds + (remainder > 0 ? 1 : 0))
    }
}
