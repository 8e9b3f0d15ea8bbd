import Testing

@testable import WorkerPool

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's decisions without processes or a real clock: times are offsets from `t0`.
@Suite struct PoolStateMachineTests {
    typealias Action = PoolStateMachine.Action
    let t0 = ContinuousClock.Instant.now
    let backoff = RestartBackoff(
        initialDelay: .milliseconds(100), maximumDelay: .milliseconds(400),
        resetAfterUptime: .seconds(10), minimumUptimeForRecycling: .milliseconds(100)
    )

    func machine(workers: Int = 2) -> PoolStateMachine {
        PoolStateMachine(workerCount: workers, gracefulStopTimeout: .seconds(3), restartBackoff: backoff)
    }

    func at(_ offset: Duration) -> ContinuousClock.Instant { t0 + offset }

    /// A machine whose slots hold pids 100, 101, ... started at `t0`.
    func running(workers: Int = 2) -> PoolStateMachine {
        var pool = machine(workers: workers)
        var actions = pool.start()
        var pid: pid_t = 100
        while case .spawn(let slot) = actions.first {
            actions = pool.spawned(slot: slot, pid: pid, now: t0, epochSeconds: 0)
            pid += 1
        }
        #expect(pool.phase == .running)
        return pool
    }

    // MARK: - Starting

    @Test func startFillsTheSlotsOneSpawnAtATime() {
        var pool = machine(workers: 3)
        #expect(pool.start() == [.spawn(slot: 0)])
        #expect(pool.spawned(slot: 0, pid: 10, now: t0, epochSeconds: 0) == [.spawn(slot: 1)])
        #expect(pool.spawned(slot: 1, pid: 11, now: t0, epochSeconds: 0) == [.spawn(slot: 2)])
        #expect(pool.spawned(slot: 2, pid: 12, now: t0, epochSeconds: 0) == [.log(.started(workers: 3))])
        #expect(pool.phase == .running)
        #expect(pool.livePIDs == [10, 11, 12])
        #expect(pool.nextDeadline == nil)
    }

    @Test func aFailedSpawnAtStartStopsThePoolWithExitCode1() {
        var pool = machine(workers: 3)
        _ = pool.start()
        _ = pool.spawned(slot: 0, pid: 10, now: t0, epochSeconds: 0)
        #expect(pool.spawnFailed(slot: 1, now: t0) == [
            .log(.stopping(workers: 1, reason: .startFailed)), .terminate(pid: 10),
        ])
        #expect(pool.workerExited(pid: 10, exit: .exited(code: 0), now: at(.milliseconds(5))) == [
            .log(.workerStopped(slot: 0, pid: 10, exit: .exited(code: 0))), .log(.allStopped), .exit(code: 1),
        ])
        #expect(pool.phase == .stopped)
    }

    @Test func aFirstSpawnThatFailsExitsAtOnce() {
        var pool = machine(workers: 2)
        _ = pool.start()
        #expect(pool.spawnFailed(slot: 0, now: t0) == [
            .log(.stopping(workers: 0, reason: .startFailed)), .log(.allStopped), .exit(code: 1),
        ])
    }

    // MARK: - Replacing workers

    @Test func aCleanExitAfterTheMinimumUptimeIsRecycledAtOnce() {
        var pool = running()
        #expect(pool.workerExited(pid: 101, exit: .exited(code: 0), now: at(.seconds(60))) == [
            .log(.recycling(slot: 1, pid: 101, uptime: .seconds(60))), .spawn(slot: 1),
        ])
        #expect(pool.spawned(slot: 1, pid: 102, now: at(.seconds(60)), epochSeconds: 0) == [])
        #expect(pool.slots[1].restarts == 1)
        #expect(pool.slots[1].lastExit == .exited(code: 0))
    }

    @Test func aCleanExitThatComesTooSoonIsBackedOffLikeACrash() {
        var pool = running()
        #expect(pool.workerExited(pid: 100, exit: .exited(code: 0), now: at(.milliseconds(50))) == [
            .log(.restartScheduled(slot: 0, pid: 100, exit: .exited(code: 0), uptime: .milliseconds(50),
                                   delay: .milliseconds(100))),
        ])
        #expect(pool.nextDeadline == at(.milliseconds(150)))
        #expect(pool.deadlinesPassed(now: at(.milliseconds(149))) == [])
        #expect(pool.deadlinesPassed(now: at(.milliseconds(150))) == [.spawn(slot: 0)])
    }

    @Test func aCrashLoopDoublesTheDelayUpToTheMaximum() {
        var pool = running(workers: 1)
        var now = at(.milliseconds(10))
        var pid: pid_t = 100
        var delays: [Duration] = []
        for _ in 0..<5 {
            let actions = pool.workerExited(pid: pid, exit: .exited(code: 1), now: now)
            guard case .log(.restartScheduled(_, _, _, _, let delay)) = actions.first else {
                Issue.record("no restart scheduled: \(actions)")
                return
            }
            delays.append(delay)
            now = now + delay
            #expect(pool.deadlinesPassed(now: now) == [.spawn(slot: 0)])
            pid += 1
            _ = pool.spawned(slot: 0, pid: pid, now: now, epochSeconds: 0)
            now = now + .milliseconds(10)  // crashes again soon after starting
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(400), .milliseconds(400)])
        #expect(pool.slots[0].restarts == 5)
    }

    @Test func aWorkerThatRanLongEnoughCountsAsAFirstCrashAgain() {
        var pool = running(workers: 1)
        _ = pool.workerExited(pid: 100, exit: .killed(signal: SIGSEGV, coreDumped: false), now: at(.milliseconds(10)))
        _ = pool.deadlinesPassed(now: at(.milliseconds(110)))
        _ = pool.spawned(slot: 0, pid: 101, now: at(.milliseconds(110)), epochSeconds: 0)
        let later = at(.seconds(30))
        #expect(pool.workerExited(pid: 101, exit: .killed(signal: SIGSEGV, coreDumped: false), now: later) == [
            .log(.restartScheduled(slot: 0, pid: 101, exit: .killed(signal: SIGSEGV, coreDumped: false),
                                   uptime: .seconds(30) - .milliseconds(110), delay: .milliseconds(100))),
        ])
    }

    @Test func aLostExitStatusIsNeverTakenForACleanExit() {
        var pool = running()
        let actions = pool.workerExited(pid: 100, exit: .statusLost, now: at(.seconds(60)))
        #expect(actions == [
            .log(.restartScheduled(slot: 0, pid: 100, exit: .statusLost, uptime: .seconds(60), delay: .milliseconds(100))),
        ])
        #expect(pool.slots[0].lastExit == .statusLost)
        #expect(pool.status(supervisorPID: 1).workers[0].lastExit == .statusLost)
    }

    @Test func aFailedRespawnIsRetriedAfterTheBackoff() {
        var pool = running()
        _ = pool.workerExited(pid: 100, exit: .exited(code: 0), now: at(.seconds(60)))
        #expect(pool.spawnFailed(slot: 0, now: at(.seconds(60))) == [.log(.respawnScheduled(slot: 0, delay: .milliseconds(100)))])
        #expect(pool.deadlinesPassed(now: at(.seconds(60) + .milliseconds(100))) == [.spawn(slot: 0)])
    }

    @Test func anUnknownPIDChangesNothing() {
        var pool = running()
        #expect(pool.workerExited(pid: 999, exit: .exited(code: 0), now: t0) == [])
        #expect(pool.livePIDs == [100, 101])
    }

    // MARK: - Reloading

    @Test func reloadReplacesOneWorkerAtATimeStartingEachReplacementFirst() {
        var pool = running()
        #expect(pool.reloadRequested() == [.log(.reloadStarted(workers: 2)), .spawn(slot: 0)])
        #expect(pool.phase == .reloading)
        #expect(pool.spawned(slot: 0, pid: 200, now: at(.seconds(1)), epochSeconds: 0) == [
            .terminate(pid: 100), .log(.replacing(slot: 0, oldPID: 100, newPID: 200)),
        ])
        #expect(pool.livePIDs == [200, 101, 100])
        #expect(pool.reloadRequested() != [], "a second SIGHUP starts over")
        #expect(pool.workerExited(pid: 100, exit: .exited(code: 0), now: at(.seconds(2))) == [
            .log(.replaced(slot: 0, pid: 100, exit: .exited(code: 0))), .spawn(slot: 0),
        ], "the restarted reload replaces slot 0's new worker too")
        #expect(pool.spawned(slot: 0, pid: 201, now: at(.seconds(2)), epochSeconds: 0) == [
            .terminate(pid: 200), .log(.replacing(slot: 0, oldPID: 200, newPID: 201)),
        ])
        _ = pool.workerExited(pid: 200, exit: .exited(code: 0), now: at(.seconds(3)))
        #expect(pool.spawned(slot: 1, pid: 202, now: at(.seconds(3)), epochSeconds: 0) == [
            .terminate(pid: 101), .log(.replacing(slot: 1, oldPID: 101, newPID: 202)),
        ])
        #expect(pool.workerExited(pid: 101, exit: .exited(code: 0), now: at(.seconds(4))) == [
            .log(.replaced(slot: 1, pid: 101, exit: .exited(code: 0))), .log(.reloadComplete),
        ])
        #expect(pool.phase == .running)
        #expect(pool.livePIDs == [201, 202])
        #expect(pool.slots.map(\.restarts) == [2, 1])
    }

    @Test func aRetiringWorkerPastItsGracePeriodIsKilled() {
        var pool = running(workers: 1)
        _ = pool.reloadRequested()
        _ = pool.spawned(slot: 0, pid: 200, now: at(.seconds(1)), epochSeconds: 0)
        #expect(pool.nextDeadline == at(.seconds(4)))
        #expect(pool.deadlinesPassed(now: at(.seconds(4))) == [.log(.gracePeriodOver(pid: 100)), .kill(pid: 100)])
        #expect(pool.deadlinesPassed(now: at(.seconds(5))) == [], "killed once")
        #expect(pool.workerExited(pid: 100, exit: .killed(signal: SIGKILL, coreDumped: false), now: at(.seconds(5))) == [
            .log(.replaced(slot: 0, pid: 100, exit: .killed(signal: SIGKILL, coreDumped: false))), .log(.reloadComplete),
        ])
    }

    @Test func aReplacementThatCannotBeSpawnedAbandonsTheReload() {
        var pool = running()
        _ = pool.reloadRequested()
        #expect(pool.spawnFailed(slot: 0, now: at(.seconds(1))) == [.log(.reloadAbandoned(slot: 0))])
        #expect(pool.phase == .running)
        #expect(pool.livePIDs == [100, 101], "the current workers keep running")
        #expect(pool.nextDeadline == nil)
        #expect(pool.reloadRequested() == [.log(.reloadStarted(workers: 2)), .spawn(slot: 0)], "a later SIGHUP tries again")
    }

    @Test func aCrashDuringAReloadIsRestartedAndTheReloadGoesOn() {
        var pool = running()
        _ = pool.reloadRequested()
        _ = pool.spawned(slot: 0, pid: 200, now: at(.seconds(1)), epochSeconds: 0)
        #expect(pool.workerExited(pid: 101, exit: .exited(code: 2), now: at(.seconds(2))).count == 1)
        #expect(pool.deadlinesPassed(now: at(.seconds(2) + .milliseconds(100))) == [.spawn(slot: 1)])
        #expect(pool.spawned(slot: 1, pid: 201, now: at(.seconds(2) + .milliseconds(100)), epochSeconds: 0) == [])
        #expect(pool.workerExited(pid: 100, exit: .exited(code: 0), now: at(.seconds(3))) == [
            .log(.replaced(slot: 0, pid: 100, exit: .exited(code: 0))), .log(.reloadComplete),
        ], "slot 1's restarted worker is already of the new generation")
    }

    @Test func aReloadRightAfterAnExitReplacesOnlyLiveWorkers() {
        var pool = running()
        _ = pool.workerExited(pid: 100, exit: .exited(code: 1), now: at(.seconds(1)))
        #expect(pool.reloadRequested() == [.log(.reloadStarted(workers: 2)), .spawn(slot: 1)],
                "the empty slot is not replaced: its restart starts a new worker anyway")
        _ = pool.spawned(slot: 1, pid: 201, now: at(.seconds(1)), epochSeconds: 0)
        #expect(pool.livePIDs == [201, 101])
        #expect(pool.deadlinesPassed(now: at(.seconds(1) + .milliseconds(100))) == [.spawn(slot: 0)])
        #expect(pool.spawned(slot: 0, pid: 200, now: at(.seconds(1) + .milliseconds(100)), epochSeconds: 0) == [])
        #expect(pool.workerExited(pid: 101, exit: .exited(code: 0), now: at(.seconds(2))) == [
            .log(.replaced(slot: 1, pid: 101, exit: .exited(code: 0))), .log(.reloadComplete),
        ])
    }

    @Test func reloadIsIgnoredWhileStopping() {
        var pool = running()
        _ = pool.stopRequested(.signal(SIGTERM), now: t0)
        #expect(pool.reloadRequested() == [])
    }

    // MARK: - Stopping

    @Test func stopTerminatesEveryWorkerThenKillsThoseLeftAtTheDeadline() {
        var pool = running()
        #expect(pool.stopRequested(.signal(SIGTERM), now: at(.seconds(1))) == [
            .log(.stopping(workers: 2, reason: .signal(SIGTERM))), .terminate(pid: 100), .terminate(pid: 101),
        ])
        #expect(pool.status(supervisorPID: 1).isStopping)
        #expect(pool.workerExited(pid: 100, exit: .exited(code: 0), now: at(.seconds(2))) == [
            .log(.workerStopped(slot: 0, pid: 100, exit: .exited(code: 0))),
        ], "a worker that stops is not replaced")
        #expect(pool.nextDeadline == at(.seconds(4)))
        #expect(pool.deadlinesPassed(now: at(.seconds(4))) == [.log(.gracePeriodOver(pid: 101)), .kill(pid: 101)])
        #expect(pool.nextDeadline == nil)
        #expect(pool.workerExited(pid: 101, exit: .killed(signal: SIGKILL, coreDumped: false), now: at(.seconds(4))) == [
            .log(.workerStopped(slot: 1, pid: 101, exit: .killed(signal: SIGKILL, coreDumped: false))),
            .log(.allStopped), .exit(code: 0),
        ])
    }

    @Test func aSecondStopKillsAtOnce() {
        var pool = running()
        _ = pool.stopRequested(.signal(SIGTERM), now: t0)
        #expect(pool.stopRequested(.signal(SIGINT), now: at(.seconds(1))) == [
            .log(.stopRepeated(reason: .signal(SIGINT))), .kill(pid: 100), .kill(pid: 101),
        ])
        #expect(pool.deadlinesPassed(now: at(.seconds(10))) == [], "not killed twice")
    }

    @Test func stopDuringAReloadStopsTheRetiringWorkerTooAndSpawnsNothing() {
        var pool = running()
        _ = pool.workerExited(pid: 101, exit: .exited(code: 1), now: at(.milliseconds(500)))
        _ = pool.reloadRequested()
        _ = pool.spawned(slot: 0, pid: 200, now: at(.seconds(1)), epochSeconds: 0)
        #expect(pool.stopRequested(.stopCalled, now: at(.seconds(1))) == [
            .log(.stopping(workers: 2, reason: .stopCalled)), .terminate(pid: 200), .terminate(pid: 100),
        ])
        #expect(pool.deadlinesPassed(now: at(.seconds(2))) == [], "slot 1's pending restart is cancelled")
        _ = pool.workerExited(pid: 100, exit: .exited(code: 0), now: at(.seconds(2)))
        #expect(pool.workerExited(pid: 200, exit: .exited(code: 0), now: at(.seconds(2))).last == .exit(code: 0))
    }

    @Test func statusShowsEachSlot() {
        var pool = running()
        _ = pool.workerExited(pid: 101, exit: .killed(signal: SIGKILL, coreDumped: false), now: at(.seconds(1)))
        let status = pool.status(supervisorPID: 42)
        #expect(status.supervisorPID == 42)
        #expect(status.workers.map(\.pid) == [100, nil])
        #expect(status.workers.map(\.restarts) == [0, 1])
        #expect(status.workers[1].startedAtEpochSeconds == nil)
        #expect(!status.isStopping)
    }
}
