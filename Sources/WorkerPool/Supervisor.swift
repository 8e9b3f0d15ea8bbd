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

/// The state and decisions of one `Supervisor.run()`; lives on that thread only.
private final class SupervisorLoop {
    private struct Slot {
        let index: Int
        var pid: pid_t?
        var startedAt: ContinuousClock.Instant = .now
        var startedAtEpochSeconds: Int?
        /// The reload generation this slot's worker was started in.
        var generation = 0
        var restarts = 0
        var lastExit: WorkerExit?
        /// The delay used after the last crash, doubled after the next one.
        var lastCrashDelay: Duration?
        /// When to start a worker again in an empty slot.
        var restartAt: ContinuousClock.Instant?
    }

    /// An old worker being replaced during a reload.
    private struct RetiringWorker {
        let pid: pid_t
        let slot: Int
        let killAt: ContinuousClock.Instant
        var killed = false
    }

    private let configuration: WorkerPoolConfiguration
    private let logger: Logger
    private let signals: SupervisorSignals
    private let stopRequested: () -> Bool
    private let publish: (PoolStatus) -> Void
    private let spawner: WorkerSpawner
    private let clock = ContinuousClock()

    private var slots: [Slot]
    private var retiring: [RetiringWorker] = []
    private var generation = 0
    private var isReloading = false
    /// Set once stopping began: when the remaining workers get SIGKILL.
    private var stopDeadline: ContinuousClock.Instant?
    private var exitCode: Int32 = 0

    init(
        configuration: WorkerPoolConfiguration,
        logger: Logger,
        signals: SupervisorSignals,
        stopRequested: @escaping () -> Bool,
        publish: @escaping (PoolStatus) -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.signals = signals
        self.stopRequested = stopRequested
        self.publish = publish
        self.spawner = WorkerSpawner(configuration: configuration, supervisorPID: getpid())
        self.slots = (0..<configuration.workerCount).map { Slot(index: $0) }
    }

    func run() -> Int32 {
        for index in slots.indices {
            guard startWorker(in: index) else {
                exitCode = 1
                beginStopping(because: "a worker could not be started")
                break
            }
        }
        if stopDeadline == nil {
            logger.info("started \(slots.count) workers", metadata: ["pool.listen_fd": "\(configuration.listenFD)"])
        }

        while true {
            reapExitedWorkers()
            if let stopDeadline {
                if livePIDs.isEmpty { break }
                if clock.now >= stopDeadline {
                    killRemainingWorkers()
                    break
                }
            } else {
                restartDueSlots()
                advanceReload()
                killOverdueRetiringWorkers()
            }
            publishStatus()

            let arrived = signals.wait(timeout: timeUntilNextDeadline())
            if stopRequested() {
                handleStopRequest(named: "stop()")
            }
            for signal in arrived {
                switch signal {
                case SIGTERM, SIGINT: handleStopRequest(named: signalName(signal))
                case SIGHUP: beginReload()
                default: break  // SIGCHLD: reaped at the top of the loop; 0: a wake-up from stop()
                }
            }
        }
        publishStatus()
        logger.info("all workers stopped")
        return exitCode
    }

    // MARK: - Starting and restarting

    private func startWorker(in index: Int) -> Bool {
        do {
            let pid = try spawner.spawn(slot: index)
            slots[index].pid = pid
            slots[index].startedAt = clock.now
            slots[index].startedAtEpochSeconds = time(nil)
            slots[index].generation = generation
            slots[index].restartAt = nil
            logger.debug("started worker", metadata: metadata(pid: pid, slot: index))
            return true
        } catch {
            logger.error("\(error)", metadata: ["worker.slot": "\(index)"])
            return false
        }
    }

    private func restartDueSlots() {
        let now = clock.now
        for index in slots.indices {
            guard slots[index].pid == nil, let restartAt = slots[index].restartAt, restartAt <= now else { continue }
            if !startWorker(in: index) {
                let delay = configuration.restartBackoff.delay(after: slots[index].lastCrashDelay, uptime: .zero)
                slots[index].lastCrashDelay = delay
                slots[index].restartAt = now + delay
            }
        }
    }

    private func workerExited(slot index: Int, pid: pid_t, exit: WorkerExit) {
        let uptime = clock.now - slots[index].startedAt
        slots[index].pid = nil
        slots[index].lastExit = exit
        let metadata = metadata(pid: pid, slot: index)

        if stopDeadline != nil {
            logger.debug("worker stopped: \(exit)", metadata: metadata)
            return
        }
        slots[index].restarts += 1
        let backoff = configuration.restartBackoff
        if exit == .exited(code: 0) && uptime >= backoff.minimumUptimeForRecycling {
            logger.info("worker exited cleanly after \(uptime.short); recycling it", metadata: metadata)
            slots[index].lastCrashDelay = nil
            slots[index].restartAt = clock.now
            return
        }
        let delay = backoff.delay(after: slots[index].lastCrashDelay, uptime: uptime)
        slots[index].lastCrashDelay = delay
        slots[index].restartAt = clock.now + delay
        if exit == .exited(code: 0) {
            logger.warning(
                "worker exited cleanly after only \(uptime.short), too soon to be recycling; restarting in \(delay.short)",
                metadata: metadata
            )
        } else {
            logger.error("worker \(exit) after \(uptime.short); restarting in \(delay.short)", metadata: metadata)
        }
    }

    // MARK: - Reaping

    private var livePIDs: [pid_t] {
        slots.compactMap(\.pid) + retiring.map(\.pid)
    }

    private func reapExitedWorkers() {
        for index in slots.indices {
            guard let pid = slots[index].pid, let exit = Self.reap(pid, blocking: false) else { continue }
            workerExited(slot: index, pid: pid, exit: exit)
        }
        retiring.removeAll { worker in
            guard let exit = Self.reap(worker.pid, blocking: false) else { return false }
            slots[worker.slot].lastExit = exit
            logger.info("replaced worker \(exit)", metadata: metadata(pid: worker.pid, slot: worker.slot))
            return true
        }
    }

    /// The exit of `pid` if it has ended, else `nil`.
    private static func reap(_ pid: pid_t, blocking: Bool) -> WorkerExit? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid { return WorkerExit(waitStatus: status) }
            if result == 0 { return nil }
            if errno == EINTR { continue }
            // ECHILD: reaped by someone else, its status lost. It is gone all the same.
            return .exited(code: 0)
        }
    }

    // MARK: - Reloading

    private func beginReload() {
        guard stopDeadline == nil else { return }
        generation += 1
        isReloading = true
        for index in slots.indices where slots[index].pid == nil {
            slots[index].generation = generation  // its next start is a new worker anyway
        }
        logger.info("reloading: replacing \(slots.count) workers one at a time")
    }

    /// Replaces the next old worker once the previous replacement has finished.
    private func advanceReload() {
        guard isReloading, retiring.isEmpty else { return }
        guard let index = slots.firstIndex(where: { $0.pid != nil && $0.generation < generation }),
              let oldPID = slots[index].pid
        else {
            isReloading = false
            logger.info("reload complete")
            return
        }
        guard startWorker(in: index) else {
            logger.error("reload abandoned: cannot start a replacement; the current workers keep running")
            for index in slots.indices { slots[index].generation = generation }
            isReloading = false
            return
        }
        slots[index].restarts += 1
        retiring.append(RetiringWorker(pid: oldPID, slot: index, killAt: clock.now + configuration.gracefulStopTimeout))
        kill(oldPID, SIGTERM)
        logger.info("replacing worker \(oldPID) with \(slots[index].pid ?? 0)", metadata: ["worker.slot": "\(index)"])
    }

    private func killOverdueRetiringWorkers() {
        let now = clock.now
        for position in retiring.indices where !retiring[position].killed && retiring[position].killAt <= now {
            let worker = retiring[position]
            logger.warning(
                "worker did not stop within \(configuration.gracefulStopTimeout.short); sending SIGKILL",
                metadata: metadata(pid: worker.pid, slot: worker.slot)
            )
            kill(worker.pid, SIGKILL)
            retiring[position].killed = true
        }
    }

    // MARK: - Stopping

    private func handleStopRequest(named name: String) {
        if stopDeadline == nil {
            beginStopping(because: "\(name) received")
        } else {
            logger.warning("\(name) received again: killing the remaining workers now")
            stopDeadline = clock.now
        }
    }

    private func beginStopping(because reason: String) {
        stopDeadline = clock.now + configuration.gracefulStopTimeout
        isReloading = false
        for index in slots.indices { slots[index].restartAt = nil }
        let pids = livePIDs
        logger.info("stopping \(pids.count) workers: \(reason)")
        for pid in pids { kill(pid, SIGTERM) }
    }

    private func killRemainingWorkers() {
        for pid in livePIDs {
            logger.warning(
                "worker did not stop within \(configuration.gracefulStopTimeout.short); sending SIGKILL",
                metadata: ["worker.pid": "\(pid)"]
            )
            kill(pid, SIGKILL)
        }
        for index in slots.indices {
            guard let pid = slots[index].pid, let exit = Self.reap(pid, blocking: true) else { continue }
            workerExited(slot: index, pid: pid, exit: exit)
        }
        for worker in retiring { _ = Self.reap(worker.pid, blocking: true) }
        retiring = []
    }

    // MARK: - Waiting and reporting

    /// Until the nearest restart, kill or stop deadline; at most a second, as a safety net.
    private func timeUntilNextDeadline() -> Duration {
        var deadlines = retiring.filter { !$0.killed }.map(\.killAt)
        if let stopDeadline {
            deadlines.append(stopDeadline)
        } else {
            deadlines += slots.compactMap(\.restartAt)
        }
        let untilNext = (deadlines.min() ?? clock.now.advanced(by: .seconds(1))) - clock.now
        return min(max(untilNext, .zero), .seconds(1))
    }

    private func publishStatus() {
        publish(PoolStatus(
            supervisorPID: getpid(),
            workers: slots.map {
                PoolStatus.Worker(
                    slot: $0.index,
                    pid: $0.pid,
                    startedAtEpochSeconds: $0.pid == nil ? nil : $0.startedAtEpochSeconds,
                    restarts: $0.restarts,
                    lastExit: $0.lastExit
                )
            },
            isStopping: stopDeadline != nil
        ))
    }

    private func metadata(pid: pid_t, slot: Int) -> Logger.Metadata {
        ["worker.pid": "\(pid)", "worker.slot": "\(slot)"]
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
