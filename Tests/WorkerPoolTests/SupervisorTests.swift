import Foundation
import Logging
import TestSupport
import WorkerPool
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's I/O with /bin/sh scripts as workers: each logs "start <pid> <slot>" and, when
/// it stops on SIGTERM, "stop <pid>" to a shared events file, and behaves as `POOL_TEST_MODE` says.
/// Its decisions (back-off, recycling, reload order, deadlines) are tested without processes in
/// PoolStateMachineTests.
final class SupervisorTests: XCTestCase {
    private static let workerScript = """
        #!/bin/sh
        case "$POOL_TEST_MODE" in
          stubborn) trap '' TERM ;;  # ignored dispositions survive exec: see below
          *) trap 'echo "stop $$" >> "$POOL_TEST_DIR/events"; exit 0' TERM ;;
        esac
        echo "start $$ $WORKERPOOL_SLOT" >> "$POOL_TEST_DIR/events"
        case "$POOL_TEST_MODE" in
          stubborn) exec sleep 30 ;;  # so SIGKILL leaves no orphaned sleep behind
          inspect)
            {
              echo "fd0=$(readlink /proc/$$/fd/0)"
              echo "inherited=$(test -e /proc/$$/fd/$POOL_TEST_INHERITED_FD && echo yes || echo no)"
              echo "slot=$WORKERPOOL_SLOT supervisor=$WORKERPOOL_SUPERVISOR_PID extra=$POOL_TEST_EXTRA"
              echo "scoreboard=$(test -e /proc/$$/fd/3 && echo yes || echo no) entry=$WORKERPOOL_SCOREBOARD_ENTRY"
            } > "$POOL_TEST_DIR/inspect.$WORKERPOOL_SLOT"
            # sleep leaves the signal mask and dispositions as exec found them, for the test to read.
            exec sleep 30 ;;
        esac
        while :; do sleep 0.05; done
        """

    private var directory: TemporaryDirectory!
    private var listener: UnixListener!
    private var running: SupervisorThread?
    private let logs = LogRecorder()

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(prefix: "pool-test")
        listener = try UnixListener(path: directory.path + "/pool.sock")
        let script = directory.path + "/worker.sh"
        try Self.workerScript.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
    }

    override func tearDown() {
        running?.stopIfRunning()
        // Belt and braces: no script may outlive its test, whatever failed above.
        for case .started(let pid, _) in events() where isRunning(pid) {
            kill(pid, SIGKILL)
        }
        listener.close()
        directory.remove()
    }

    // MARK: - Tests

    func testStartsEachWorkerWithTheSocketOnFd0AndACleanSlate() throws {
        // A descriptor without close-on-exec must still not leak into workers.
        let inherited = dup2(open("/dev/null", O_RDONLY), 200)
        defer { close(inherited) }
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGUSR1)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previousMask)  // the supervisor's thread inherits this mask
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        let previousPipe = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previousPipe) }

        let pool = start(mode: "inspect", workers: 3, environment: ["POOL_TEST_INHERITED_FD": "200", "POOL_TEST_EXTRA": "hello"])
        XCTAssertTrue(eventually {
            guard let pids = pool.workerPIDs else { return false }
            return (0..<3).allSatisfy { inspection(slot: $0).contains("extra=") }
                && pids.allSatisfy { command(of: $0) == "sleep" }
        })

        var socketInfo = stat()
        fstat(listener.descriptor, &socketInfo)
        for slot in 0..<3 {
            let report = inspection(slot: slot)
            XCTAssertTrue(report.contains("fd0=socket:[\(socketInfo.st_ino)]"), report)
            XCTAssertTrue(report.contains("inherited=no"), report)
            XCTAssertTrue(report.contains("slot=\(slot) supervisor=\(getpid()) extra=hello"), report)
        }
        for pid in pool.workerPIDs ?? [] {
            let signals = try signalMasks(of: pid)
            XCTAssertEqual(signals.blocked, 0, "no signal blocked")
            // glibc's posix_spawn leaves its two internal signals (32, 33) ignored; a glibc program
            // resets them at start-up. No ordinary signal may be ignored.
            XCTAssertEqual(signals.ignored & 0x7fff_ffff, 0, "no ordinary signal ignored")
        }
        XCTAssertEqual(Set(pool.workerPIDs ?? []), Set(startedPIDs()))
    }

    func testKilledWorkerIsReplaced() throws {
        let pool = start(workers: 2)
        XCTAssertTrue(allStarted(pool))
        let victim = try XCTUnwrap(pool.supervisor.status.workers.first { $0.slot == 1 }?.pid)

        kill(victim, SIGKILL)
        XCTAssertTrue(eventually {
            let replacement = pool.supervisor.status.workers[1].pid
            return replacement != nil && replacement != victim && startedPIDs().count == 3
        })
        let slot = pool.supervisor.status.workers[1]
        XCTAssertEqual(slot.restarts, 1)
        XCTAssertEqual(slot.lastExit, .killed(signal: SIGKILL, coreDumped: false))
        XCTAssertTrue(logs.contains(.error, "killed by SIGKILL"))
    }

    func testScoreboardEntriesFollowTheWorkersAndKeepTheCountsOfThoseThatEnded() throws {
        let scoreboard = try Scoreboard.create(
            layout: ScoreboardLayout(entries: 4, counterWords: 2, liveWords: 1, supervisorWords: 0), startedAt: 0)
        let pool = start(mode: "inspect", workers: 2, scoreboard: scoreboard)
        XCTAssertTrue(allStarted(pool))
        func entryPIDs() -> Set<pid_t> { Set((0..<4).compactMap { scoreboard.entry($0).pid }) }
        XCTAssertTrue(eventually { entryPIDs() == Set(pool.workerPIDs ?? []) })
        XCTAssertEqual(scoreboard.poolCounter(.workerStarts), 2)
        // Each worker got its entry and the scoreboard on fd 3.
        for slot in 0..<2 {
            XCTAssertTrue(eventually { inspection(slot: slot).contains("scoreboard=yes entry=") }, inspection(slot: slot))
        }

        let victim = try XCTUnwrap(pool.supervisor.status.workers[1].pid)
        let entry = try XCTUnwrap((0..<4).first { scoreboard.entry($0).pid == victim })
        scoreboard.entry(entry).counters.add(1, 41)  // what the worker counted
        scoreboard.entry(entry).live.add(0, 9)
        kill(victim, SIGKILL)
        XCTAssertTrue(eventually { scoreboard.poolCounter(.workerStarts) == 3 && entryPIDs().count == 2 })
        XCTAssertFalse(entryPIDs().contains(victim))
        XCTAssertEqual(scoreboard.poolCounter(.exitsSignal), 1)
        XCTAssertEqual(scoreboard.retiredCounters.load(1), 41)
        XCTAssertEqual(scoreboard.entry(entry).counters.load(1), 0)
        XCTAssertEqual(scoreboard.entry(entry).live.load(0), 0)
    }

    func testHangupReplacesWorkersOneAtATime() throws {
        let pool = start(workers: 3)
        XCTAssertTrue(allStarted(pool))
        let old = Set(pool.workerPIDs ?? [])
        let before = events().count

        kill(getpid(), SIGHUP)  // the real signal; the supervisor's handler owns it while it runs
        XCTAssertTrue(eventually { logs.contains(.info, "reload complete") })

        // Each replacement is spawned before its predecessor gets SIGTERM, and the next slot waits
        // until that predecessor is gone.
        let steps = logs.recorded.map(\.message).filter { $0.hasPrefix("replac") || $0.hasPrefix("reload") }
        XCTAssertEqual(steps.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }, [
            "reloading: replacing",
            "replacing worker", "replaced worker",
            "replacing worker", "replaced worker",
            "replacing worker", "replaced worker",
            "reload complete",
        ])
        let new = Set(pool.workerPIDs ?? [])
        XCTAssertTrue(eventually { Set(events().dropFirst(before).compactMap(\.startedPID)) == new }, "new ones started")
        XCTAssertEqual(Set(events().dropFirst(before).compactMap(\.stoppedPID)), old, "each old worker stopped on SIGTERM")
        XCTAssertTrue(old.isDisjoint(with: new))
        XCTAssertTrue(old.allSatisfy { !isRunning($0) })
        XCTAssertEqual(pool.supervisor.status.workers.map(\.restarts), [1, 1, 1])
    }

    func testTerminateStopsEveryWorkerAndReturns() throws {
        let pool = start(workers: 3)
        XCTAssertTrue(allStarted(pool))
        let pids = pool.workerPIDs ?? []

        kill(getpid(), SIGTERM)  // the real signal; the supervisor's handler owns it while it runs
        XCTAssertEqual(pool.waitForExit(timeout: .seconds(3)), 0)
        XCTAssertEqual(Set(events().compactMap(\.stoppedPID)), Set(pids), "each worker stopped on SIGTERM")
        XCTAssertTrue(pids.allSatisfy { !isRunning($0) }, "and was reaped")
        XCTAssertTrue(pool.supervisor.status.isStopping)
    }

    func testWorkerIgnoringTerminateIsKilledAfterTheGracePeriod() throws {
        let pool = start(mode: "stubborn", workers: 1, gracefulStopTimeout: .milliseconds(500))
        XCTAssertTrue(allStarted(pool))
        let pid = try XCTUnwrap(pool.workerPIDs?.first)

        let stopping = ContinuousClock.now
        pool.supervisor.stop()
        XCTAssertEqual(pool.waitForExit(timeout: .seconds(3)), 0)
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - stopping, .milliseconds(500))
        XCTAssertFalse(isRunning(pid))
        XCTAssertEqual(pool.supervisor.status.workers[0].lastExit, .killed(signal: SIGKILL, coreDumped: false))
        XCTAssertTrue(logs.contains(.warning, "sending SIGKILL"))
    }

    func testMissingExecutableFailsAtStart() throws {
        let configuration = WorkerPoolConfiguration(
            executablePath: directory.path + "/no-such-worker", workerCount: 2, listenFD: listener.descriptor
        )
        let pool = SupervisorThread(configuration: configuration, logger: logs.logger)
        running = pool
        XCTAssertEqual(pool.waitForExit(timeout: .seconds(3)), 1)
        XCTAssertTrue(logs.contains(.error, "cannot start worker"))
    }

    // MARK: - Helpers

    private func start(
        mode: String = "normal",
        workers: Int,
        environment: [String: String] = [:],
        backoff: RestartBackoff = RestartBackoff(),
        gracefulStopTimeout: Duration = .seconds(3),
        scoreboard: Scoreboard? = nil
    ) -> SupervisorThread {
        let configuration = WorkerPoolConfiguration(
            executablePath: directory.path + "/worker.sh",
            environment: environment.merging(["POOL_TEST_DIR": directory.path, "POOL_TEST_MODE": mode]) { $1 },
            workerCount: workers,
            listenFD: listener.descriptor,
            gracefulStopTimeout: gracefulStopTimeout,
            restartBackoff: backoff,
            scoreboard: scoreboard
        )
        let pool = SupervisorThread(configuration: configuration, logger: logs.logger)
        running = pool
        return pool
    }

    private enum Event {
        case started(pid: pid_t, slot: Int)
        case stopped(pid: pid_t)

        var startedPID: pid_t? { if case .started(let pid, _) = self { pid } else { nil } }
        var stoppedPID: pid_t? { if case .stopped(let pid) = self { pid } else { nil } }
    }

    private func events() -> [Event] {
        let text = (try? String(contentsOfFile: directory.path + "/events", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let pid = pid_t(fields[1]) else { return nil }
            if fields[0] == "start", fields.count == 3, let slot = Int(fields[2]) { return .started(pid: pid, slot: slot) }
            if fields[0] == "stop" { return .stopped(pid: pid) }
            return nil
        }
    }

    /// Whether every worker announced itself (so its SIGTERM trap is set) and the status shows it.
    private func allStarted(_ pool: SupervisorThread) -> Bool {
        eventually {
            let pids = pool.workerPIDs ?? []
            return pids.count == pool.supervisor.configuration.workerCount && Set(startedPIDs()).isSuperset(of: pids)
        }
    }

    private func startedPIDs() -> [pid_t] {
        events().compactMap(\.startedPID)
    }

    private func signalMasks(of pid: pid_t) throws -> (blocked: UInt64, ignored: UInt64) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func mask(_ name: String) -> UInt64? {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { UInt64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
        }
        return (try XCTUnwrap(mask("SigBlk")), try XCTUnwrap(mask("SigIgn")))
    }

    private func command(of pid: pid_t) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
    }

    private func inspection(slot: Int) -> String {
        (try? String(contentsOfFile: directory.path + "/inspect.\(slot)", encoding: .utf8)) ?? ""
    }
}
