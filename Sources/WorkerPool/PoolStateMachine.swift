#if canImport(Glibc)
import Glibc
#endif

/// Every decision of the supervisor, as a value: events in, actions out. It starts no process,
/// sends no signal and reads no clock; `Supervisor` carries out the actions and reports back.
///
/// Phases (php-fpm names a pool's states in `fpm_process_ctl.c`; a static pool needs these):
/// - `starting`: the slots are filled one spawn at a time; a spawn that fails stops the pool
///   with exit code 1.
/// - `running`: every slot has a worker or waits out its restart delay. A worker that exits 0
///   after `RestartBackoff.minimumUptimeForRecycling` is recycling and is replaced at once; any
///   other end (a crash, a signal, a status lost to `ECHILD`, a clean exit that came too soon) is
///   replaced after `RestartBackoff.delay(after:uptime:)`.
/// - `reloading`: SIGHUP. One slot at a time: its replacement is spawned first, then the old
///   worker gets SIGTERM (SIGKILL after `gracefulStopTimeout`), and the next slot waits until the
///   old one is reaped, so the pool never runs short. A replacement that cannot be spawned
///   abandons the reload and the current workers keep running. Crashes are handled as in
///   `running`.
/// - `stopping`: SIGTERM, SIGINT or `Supervisor.stop()`. Nothing more is spawned; every worker
///   gets SIGTERM, and SIGKILL at the deadline; a second stop request moves the deadline to now.
/// - `stopped`: every worker is reaped; the last action is `.exit(code:)`.
///
/// The caller's rule: carry out an event's actions (reporting `spawned`/`spawnFailed` for each
/// spawn) before reporting the next event, and report a worker's exit before anything else that
/// happened at the same time. Then every pid the machine names is alive or not yet reaped, so a
/// signal never reaches a recycled pid.
struct PoolStateMachine {
    typealias Instant = ContinuousClock.Instant

    enum Phase: Equatable {
        case starting
        case running
        case reloading
        /// SIGKILL goes to every worker still running at `killAt`.
        case stopping(killAt: Instant)
        case stopped
    }

    /// What the supervisor must do next, in order.
    enum Action: Equatable {
        /// Spawn a worker into `slot`, then report `spawned` or `spawnFailed`.
        case spawn(slot: Int)
        /// SIGTERM: finish the current request, then exit.
        case terminate(pid: pid_t)
        /// SIGKILL.
        case kill(pid: pid_t)
        /// Something an operator should read in the log.
        case log(Notice)
        /// Every worker is gone: return `code` from `Supervisor.run()`.
        case exit(code: Int32)
    }

    /// The events worth a log line, with what the line needs.
    enum Notice: Equatable {
        case started(workers: Int)
        case recycling(slot: Int, pid: pid_t, uptime: Duration)
        case restartScheduled(slot: Int, pid: pid_t, exit: WorkerExit, uptime: Duration, delay: Duration)
        /// A spawn outside `starting` failed; the slot tries again after `delay`.
        case respawnScheduled(slot: Int, delay: Duration)
        case reloadStarted(workers: Int)
        case replacing(slot: Int, oldPID: pid_t, newPID: pid_t)
        case replaced(slot: Int, pid: pid_t, exit: WorkerExit)
        case reloadComplete
        case reloadAbandoned(slot: Int)
        case stopping(workers: Int, reason: StopReason)
        case stopRepeated(reason: StopReason)
        case gracePeriodOver(pid: pid_t)
        case workerStopped(slot: Int?, pid: pid_t, exit: WorkerExit)
        case allStopped
    }

    enum StopReason: Equatable, CustomStringConvertible {
        case signal(Int32)
        case stopCalled
        case startFailed

        var description: String {
            switch self {
            case .signal(let signal): "\(signalName(signal)) received"
            case .stopCalled: "stop() called"
            case .startFailed: "a worker could not be started"
            }
        }
    }

    struct Slot: Equatable {
        var pid: pid_t?
        var startedAt: Instant?
        var startedAtEpochSeconds: Int?
        /// The reload generation this slot's worker was started in.
        var generation = 0
        /// How often this slot's worker was replaced: crashes, recycling and reloads.
        var restarts = 0
        var lastExit: WorkerExit?
        /// The delay used after the last crash; the next one doubles it.
        var lastCrashDelay: Duration?
        /// When to spawn into this empty slot.
        var restartAt: Instant?
    }

    /// An old worker that got SIGTERM during a reload and has not been reaped yet.
    struct RetiringWorker: Equatable {
        let pid: pid_t
        let slot: Int
        let killAt: Instant
        var killed = false
    }

    private let gracefulStopTimeout: Duration
    private let backoff: RestartBackoff

    private(set) var phase: Phase = .starting
    private(set) var slots: [Slot]
    private(set) var retiring: [RetiringWorker] = []
    private var generation = 0
    /// The slot whose replacement is being spawned during a reload, and the worker it replaces.
    private var replacing: (slot: Int, oldPID: pid_t)?
    private var killedAllAtDeadline = false
    private var exitCode: Int32 = 0

    init(workerCount: Int, gracefulStopTimeout: Duration, restartBackoff: RestartBackoff) {
        precondition(workerCount > 0, "a pool needs at least one worker")
        self.gracefulStopTimeout = gracefulStopTimeout
        self.backoff = restartBackoff
        self.slots = Array(repeating: Slot(), count: workerCount)
    }

    init(configuration: WorkerPoolConfiguration) {
        self.init(
            workerCount: configuration.workerCount,
            gracefulStopTimeout: configuration.gracefulStopTimeout,
            restartBackoff: configuration.restartBackoff
        )
    }

    /// Every worker process the supervisor must wait for.
    var livePIDs: [pid_t] {
        slots.compactMap(\.pid) + retiring.map(\.pid)
    }

    /// When `deadlinesPassed` has something to do next; `nil` when only an event can change anything.
    var nextDeadline: Instant? {
        switch phase {
        case .starting, .stopped:
            return nil
        case .stopping(let killAt):
            return killedAllAtDeadline ? nil : killAt
        case .running, .reloading:
            let kills = retiring.filter { !$0.killed }.map(\.killAt)
            return (kills + slots.compactMap(\.restartAt)).min()
        }
    }

    // MARK: - Events

    mutating func start() -> [Action] {
        precondition(phase == .starting && slots.allSatisfy { $0.pid == nil }, "start() once")
        return [.spawn(slot: 0)]
    }

    mutating func spawned(slot index: Int, pid: pid_t, now: Instant, epochSeconds: Int) -> [Action] {
        assert(slots[index].pid == nil || replacing?.slot == index, "spawned into slot \(index), which has a worker")
        slots[index].pid = pid
        slots[index].startedAt = now
        slots[index].startedAtEpochSeconds = epochSeconds
        slots[index].generation = generation
        slots[index].restartAt = nil

        switch phase {
        case .starting:
            if let next = slots.firstIndex(where: { $0.pid == nil }) {
                return [.spawn(slot: next)]
            }
            phase = .running
            return [.log(.started(workers: slots.count))]
        case .reloading:
            guard let replacing, replacing.slot == index else { return [] }
            self.replacing = nil
            slots[index].restarts += 1
            retiring.append(RetiringWorker(pid: replacing.oldPID, slot: index, killAt: now + gracefulStopTimeout))
            return [.terminate(pid: replacing.oldPID), .log(.replacing(slot: index, oldPID: replacing.oldPID, newPID: pid))]
        case .running, .stopping, .stopped:
            return []
        }
    }

    mutating func spawnFailed(slot index: Int, now: Instant) -> [Action] {
        switch phase {
        case .starting:
            exitCode = 1
            return beginStopping(because: .startFailed, now: now)
        case .reloading where replacing?.slot == index:
            // The old worker still holds the slot; it keeps running.
            replacing = nil
            phase = .running
            for i in slots.indices { slots[i].generation = generation }
            return [.log(.reloadAbandoned(slot: index))]
        case .running, .reloading:
            let delay = backoff.delay(after: slots[index].lastCrashDelay, uptime: .zero)
            slots[index].lastCrashDelay = delay
            slots[index].restartAt = now + delay
            return [.log(.respawnScheduled(slot: index, delay: delay))]
        case .stopping, .stopped:
            return []
        }
    }

    /// `exit` is `.statusLost` when `waitpid` said `ECHILD`: the process is gone, how is unknown.
    mutating func workerExited(pid: pid_t, exit: WorkerExit, now: Instant) -> [Action] {
        if let position = retiring.firstIndex(where: { $0.pid == pid }) {
            let worker = retiring.remove(at: position)
            slots[worker.slot].lastExit = exit
            if case .stopping = phase {
                return [.log(.workerStopped(slot: worker.slot, pid: pid, exit: exit))] + stopIfAllGone()
            }
            return [.log(.replaced(slot: worker.slot, pid: pid, exit: exit))] + advanceReload()
        }
        guard let index = slots.firstIndex(where: { $0.pid == pid }) else { return [] }
        let uptime = slots[index].startedAt.map { now - $0 } ?? .zero
        slots[index].pid = nil
        slots[index].lastExit = exit

        switch phase {
        case .stopping:
            return [.log(.workerStopped(slot: index, pid: pid, exit: exit))] + stopIfAllGone()
        case .stopped:
            return []
        case .starting, .running, .reloading:
            slots[index].restarts += 1
            if exit == .exited(code: 0) && uptime >= backoff.minimumUptimeForRecycling {
                slots[index].lastCrashDelay = nil
                return [.log(.recycling(slot: index, pid: pid, uptime: uptime)), .spawn(slot: index)]
            }
            let delay = backoff.delay(after: slots[index].lastCrashDelay, uptime: uptime)
            slots[index].lastCrashDelay = delay
            slots[index].restartAt = now + delay
            return [.log(.restartScheduled(slot: index, pid: pid, exit: exit, uptime: uptime, delay: delay))]
        }
    }

    /// SIGHUP. Ignored while starting or stopping; during a reload it starts over with every worker.
    mutating func reloadRequested() -> [Action] {
        switch phase {
        case .starting, .stopping, .stopped:
            return []
        case .running, .reloading:
            generation += 1
            phase = .reloading
            for i in slots.indices where slots[i].pid == nil {
                slots[i].generation = generation  // its next start is a new worker anyway
            }
            return [.log(.reloadStarted(workers: slots.count))] + advanceReload()
        }
    }

    mutating func stopRequested(_ reason: StopReason, now: Instant) -> [Action] {
        switch phase {
        case .stopped:
            return []
        case .stopping:
            phase = .stopping(killAt: now)
            killedAllAtDeadline = true
            return [.log(.stopRepeated(reason: reason))] + livePIDs.map { .kill(pid: $0) }
        case .starting, .running, .reloading:
            return beginStopping(because: reason, now: now)
        }
    }

    /// Restarts that are due, and SIGKILL for workers past their grace period.
    mutating func deadlinesPassed(now: Instant) -> [Action] {
        switch phase {
        case .starting, .stopped:
            return []
        case .stopping(let killAt):
            guard !killedAllAtDeadline, killAt <= now else { return [] }
            killedAllAtDeadline = true
            return livePIDs.flatMap { [Action.log(.gracePeriodOver(pid: $0)), .kill(pid: $0)] }
        case .running, .reloading:
            var actions: [Action] = []
            for position in retiring.indices where !retiring[position].killed && retiring[position].killAt <= now {
                retiring[position].killed = true
                actions += [.log(.gracePeriodOver(pid: retiring[position].pid)), .kill(pid: retiring[position].pid)]
            }
            for index in slots.indices {
                guard slots[index].pid == nil, let restartAt = slots[index].restartAt, restartAt <= now else { continue }
                slots[index].restartAt = nil
                actions.append(.spawn(slot: index))
            }
            return actions
        }
    }

    // MARK: - Status

    func status(supervisorPID: pid_t) -> PoolStatus {
        PoolStatus(
            supervisorPID: supervisorPID,
            workers: slots.indices.map { index in
                let slot = slots[index]
                return PoolStatus.Worker(
                    slot: index,
                    pid: slot.pid,
                    startedAtEpochSeconds: slot.pid == nil ? nil : slot.startedAtEpochSeconds,
                    restarts: slot.restarts,
                    lastExit: slot.lastExit
                )
            },
            isStopping: isStopping
        )
    }

    /// From the first stop request on, `stopped` included.
    var isStopping: Bool {
        switch phase {
        case .stopping, .stopped: true
        case .starting, .running, .reloading: false
        }
    }

    // MARK: - Steps

    /// Spawns the replacement of the next worker of an older generation, once the previous old
    /// worker is reaped; completes the reload when none is left.
    private mutating func advanceReload() -> [Action] {
        guard phase == .reloading, retiring.isEmpty, replacing == nil else { return [] }
        guard let index = slots.firstIndex(where: { $0.pid != nil && $0.generation < generation }),
              let oldPID = slots[index].pid
        else {
            phase = .running
            return [.log(.reloadComplete)]
        }
        replacing = (index, oldPID)
        return [.spawn(slot: index)]
    }

    private mutating func beginStopping(because reason: StopReason, now: Instant) -> [Action] {
        phase = .stopping(killAt: now + gracefulStopTimeout)
        replacing = nil
        for i in slots.indices { slots[i].restartAt = nil }
        let pids = livePIDs
        return [.log(.stopping(workers: pids.count, reason: reason))] + pids.map { .terminate(pid: $0) } + stopIfAllGone()
    }

    private mutating func stopIfAllGone() -> [Action] {
        guard livePIDs.isEmpty else { return [] }
        phase = .stopped
        return [.log(.allStopped), .exit(code: exitCode)]
    }
}
