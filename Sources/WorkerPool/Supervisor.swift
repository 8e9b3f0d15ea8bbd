import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a static pool of worker processes running on one shared listening socket, like php-fpm's
/// `pm = static`.
///
/// - A worker that exits is replaced. A crash is backed off (`RestartBackoff`); a clean exit is
///   recycling (the worker served its share of requests) and is replaced at once.
/// - SIGHUP replaces the workers one at a time: the replacement starts first, then the old worker
///   gets SIGTERM and is waited for before the next slot, so the pool never runs short and the old
///   worker finishes its request.
/// - SIGTERM, SIGINT or `stop()`: nothing more is spawned, every worker gets SIGTERM, those still
///   running after `gracefulStopTimeout` get SIGKILL, all are reaped, and `run()` returns. A second
///   SIGTERM or SIGINT kills the remaining workers at once.
///
/// The decisions are `PoolStateMachine`'s; this type only carries them out (spawn, signal, reap, log).
///
/// Only processes it spawned are waited for (`waitpid` by pid), so it coexists with other children.
public final class Supervisor: Sendable {
    public let configuration: WorkerPoolConfiguration
    private let logger: Logger
    private let latestStatus: Mutex<PoolStatus>
    private let stopRequested = Atomic<Bool>(false)

    public init(configuration: WorkerPoolConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let idle = (0..<configuration.workerCount).map {
            PoolStatus.Worker(slot: $0, pid: nil, startedAtEpochSeconds: nil, restarts: 0, lastExit: nil)
        }
        latestStatus = Mutex(PoolStatus(supervisorPID: getpid(), workers: idle, isStopping: false))
    }

    /// The pool as of the supervisor loop's last turn; safe to read from any thread.
    public var status: PoolStatus {
        latestStatus.withLock { $0 }
    }

    /// Asks a running (or about to run) supervisor to stop, as SIGTERM would. Safe from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        SupervisorSignals.wakeRunningSupervisor()
    }

    /// Runs `body` with the supervisor's signals (SIGTERM, SIGINT, SIGHUP, SIGCHLD) blocked on the
    /// calling thread: threads started in `body` inherit the mask, so those signals are handled on
    /// the supervisor's thread and never interrupt theirs.
    public static func withSignalsBlocked<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in SupervisorSignals.handled { sigaddset(&signals, signal) }
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &signals, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        return try body()
    }

    /// Runs the pool on the calling thread until it is stopped; returns the process exit code:
    /// 0 after an orderly stop, 1 when the workers could not be started or signals not handled.
    ///
    /// Installs handlers for SIGTERM, SIGINT, SIGHUP and SIGCHLD for its duration (the previous ones
    /// are restored on return). Keep the calling thread alive while workers run: the kernel's
    /// parent-death signal (`WorkerLifecycle.stopWhenSupervisorDies`) fires when it exits.
    public func run() -> Int32 {
        let signals: SupervisorSignals
        do {
            signals = try SupervisorSignals.install()
        } catch {
            logger.critical("\(error)")
            return 1
        }
        defer { signals.uninstall() }

        let loop = SupervisorLoop(
            configuration: configuration,
            logger: logger,
            signals: signals,
            stopRequested: { self.stopRequested.exchange(false, ordering: .sequentiallyConsistent) },
            publish: { status in self.latestStatus.withLock { $0 = status } }
        )
        return loop.run()
    }
}

/// The I/O of one `Supervisor.run()`: spawns, signals, reaps and logs what `PoolStateMachine`
/// decides, and feeds it the events. Lives on that thread only.
private final class SupervisorLoop {
    private let logger: Logger
    private let signals: SupervisorSignals
    private let stopRequested: () -> Bool
    private let publish: (PoolStatus) -> Void
    private let spawner: WorkerSpawner
    private let gracefulStopTimeout: Duration
    private let listenFD: Int32
    private let reloadCheck: @Sendable () -> String?
    private let clock = ContinuousClock()
    private var machine: PoolStateMachine
    private var seats: ScoreboardSeats?

    init(
        configuration: WorkerPoolConfiguration,
        logger: Logger,
        signals: SupervisorSignals,
        stopRequested: @escaping () -> Bool,
        publish: @escaping (PoolStatus) -> Void
    ) {
        self.logger = logger
        self.signals = signals
        self.stopRequested = stopRequested
        self.publish = publish
        self.spawner = WorkerSpawner(configuration: configuration, supervisorPID: getpid())
        self.gracefulStopTimeout = configuration.gracefulStopTimeout
        self.listenFD = configuration.listenFD
        self.reloadCheck = configuration.reloadCheck
        self.machine = PoolStateMachine(configuration: configuration)
        self.seats = configuration.scoreboard.map(ScoreboardSeats.init)
    }

    /// Feeds the machine one event at a time and carries out that event's actions before the next
    /// (the machine's rule: a pid it names is alive or not yet reaped). Each turn reaps first, so a
    /// reload or stop never picks a worker that has already ended.
    func run() -> Int32 {
        if let exitCode = perform(machine.start()) { return finish(exitCode) }
        while true {
            publish(machine.status(supervisorPID: getpid()))
            let arrived = signals.wait(timeout: timeUntil(machine.nextDeadline))

            for pid in machine.livePIDs {
                guard let exit = Self.reap(pid) else { continue }
                seats?.reaped(pid, exit: exit)
                if let exitCode = perform(machine.workerExited(pid: pid, exit: exit, now: clock.now)) {
                    return finish(exitCode)
                }
            }
            if stopRequested(), let exitCode = perform(machine.stopRequested(.stopCalled, now: clock.now)) {
                return finish(exitCode)
            }
            for signal in arrived {
                let actions: [PoolStateMachine.Action]
                switch signal {
                case SIGTERM, SIGINT: actions = machine.stopRequested(.signal(signal), now: clock.now)
                case SIGHUP:
                    if let reason = reloadCheck() {
                        logger.error("reload refused; the current workers keep running", metadata: ["reason": "\(reason)"])
                        continue
                    }
                    seats?.scoreboard.count(.reloads)
                    actions = machine.reloadRequested()
                default: continue  // SIGCHLD: reaped above; 0: a wake-up from stop()
                }
                if let exitCode = perform(actions) { return finish(exitCode) }
            }
            if let exitCode = perform(machine.deadlinesPassed(now: clock.now)) { return finish(exitCode) }
        }
    }

    private func finish(_ exitCode: Int32) -> Int32 {
        publish(machine.status(supervisorPID: getpid()))
        return exitCode
    }

    /// Carries out `actions` and those their outcomes lead to; the exit code once the pool stopped.
    private func perform(_ actions: [PoolStateMachine.Action]) -> Int32? {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .spawn(let slot):
                do {
                    let entry = seats?.free()
                    let pid = try spawner.spawn(slot: slot, entry: entry)
                    logger.debug("started worker", metadata: metadata(pid: pid, slot: slot))
                    let startedAt = time(nil)
                    if let entry { seats?.occupy(entry, pid: pid, slot: slot, startedAt: startedAt) }
                    queue += machine.spawned(slot: slot, pid: pid, now: clock.now, epochSeconds: startedAt)
                } catch {
                    logger.error("\(error)", metadata: ["worker.slot": "\(slot)"])
                    queue += machine.spawnFailed(slot: slot, now: clock.now)
                }
            case .terminate(let pid):
                kill(pid, SIGTERM)
            case .kill(let pid):
                kill(pid, SIGKILL)
            case .log(let notice):
                log(notice)
            case .exit(let code):
                return code
            }
        }
        return nil
    }

    /// The exit of `pid` if it has ended, else `nil`.
    private static func reap(_ pid: pid_t) -> WorkerExit? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return WorkerExit(waitStatus: status) }
            if result == 0 { return nil }
            if errno == EINTR { continue }
            return .statusLost  // ECHILD: reaped by someone else; gone all the same
        }
    }

    /// Until `deadline`; at most a second, as a safety net.
    private func timeUntil(_ deadline: ContinuousClock.Instant?) -> Duration {
        guard let deadline else { return .seconds(1) }
        return min(max(deadline - clock.now, .zero), .seconds(1))
    }

    private func log(_ notice: PoolStateMachine.Notice) {
        switch notice {
        case .started(let workers):
            logger.info("started \(workers) workers", metadata: ["pool.listen_fd": "\(listenFD)"])
        case .recycling(let slot, let pid, let uptime):
            logger.info("worker exited cleanly after \(uptime.short); recycling it", metadata: metadata(pid: pid, slot: slot))
        case .restartScheduled(let slot, let pid, .exited(code: 0), let uptime, let delay):
            logger.warning(
                "worker exited cleanly after only \(uptime.short), too soon to be recycling; restarting in \(delay.short)",
                metadata: metadata(pid: pid, slot: slot)
            )
        case .restartScheduled(let slot, let pid, let exit, let uptime, let delay):
            logger.error("worker \(exit) after \(uptime.short); restarting in \(delay.short)", metadata: metadata(pid: pid, slot: slot))
        case .respawnScheduled(let slot, let delay):
            logger.error("trying again in \(delay.short)", metadata: ["worker.slot": "\(slot)"])
        case .reloadStarted(let workers):
            logger.info("reloading: replacing \(workers) workers one at a time")
        case .replacing(let slot, let oldPID, let newPID):
            logger.info("replacing worker \(oldPID) with \(newPID)", metadata: ["worker.slot": "\(slot)"])
        case .replaced(let slot, let pid, let exit):
            logger.info("replaced worker \(exit)", metadata: metadata(pid: pid, slot: slot))
        case .reloadComplete:
            logger.info("reload complete")
        case .reloadAbandoned(let slot):
            logger.error(
                "reload abandoned: cannot start a replacement; the current workers keep running",
                metadata: ["worker.slot": "\(slot)"]
            )
        case .stopping(let workers, let reason):
            logger.info("stopping \(workers) workers: \(reason)")
        case .stopRepeated(let reason):
            logger.warning("\(reason) again: killing the remaining workers now")
        case .gracePeriodOver(let pid):
            logger.warning(
                "worker did not stop within \(gracefulStopTimeout.short); sending SIGKILL",
                metadata: ["worker.pid": "\(pid)"]
            )
        case .workerStopped(let slot, let pid, let exit):
            logger.debug("worker stopped: \(exit)", metadata: metadata(pid: pid, slot: slot))
        case .allStopped:
            logger.info("all workers stopped")
        }
    }

    private func metadata(pid: pid_t, slot: Int?) -> Logger.Metadata {
        ["worker.pid": "\(pid)", "worker.slot": "\(slot.map(String.init) ?? "-")"]
    }
}

extension Duration {
    /// "250 ms" or "1.5 s", for log lines.
    fileprivate var short: String {
        let milliseconds = roundedUpMilliseconds
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        return "\(milliseconds / 1000).\(milliseconds % 1000 / 100) s"
    }
}
