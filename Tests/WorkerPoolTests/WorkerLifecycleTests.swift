import Foundation
import Logging
import Synchronization
import TestSupport
import WorkerPool
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Workers that use `WorkerLifecycle` for real: this test binary, re-run with `WORKERPOOL_TEST_WORKER=1`
/// so that `WorkerProcessHost` serves a line protocol on fd 0 the way a FastCGI worker serves requests.
final class WorkerLifecycleTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var listener: UnixListener!
    private var running: SupervisorThread?
    private let logs = LogRecorder()

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(prefix: "pool-test")
        listener = try UnixListener(path: directory.path + "/pool.sock")
    }

    override func tearDown() {
        running?.stopIfRunning()
        listener.close()
        directory.remove()
    }

    func testReloadUnderLoadLosesNoRequest() throws {
        let pool = startPool(workers: 2)
        XCTAssertTrue(waitUntilServing() && eventually { pool.workerPIDs != nil })
        let old = Set(pool.workerPIDs ?? [])

        let client = LoadClient(path: listener.path, delayMilliseconds: 20)
        pause(.milliseconds(200))
        kill(getpid(), SIGHUP)
        XCTAssertTrue(eventually(timeout: .seconds(10)) { logs.contains(.info, "reload complete") })
        pause(.milliseconds(200))
        let result = client.finish()

        XCTAssertEqual(result.failures, 0, "no request may fail while workers are replaced")
        XCTAssertGreaterThan(result.successes, 10)
        let new = Set(pool.workerPIDs ?? [])
        XCTAssertTrue(old.isDisjoint(with: new))
        // Old and new workers both served (which old worker took the requests before the reload is
        // up to the kernel: one may have taken them all).
        XCTAssertTrue(!result.servedBy.isDisjoint(with: old) && !result.servedBy.isDisjoint(with: new), "\(result.servedBy)")
        XCTAssertTrue(
            eventually { pool.supervisor.status.workers.map(\.lastExit) == [.exited(code: 0), .exited(code: 0)] },
            "old workers left accept() and exited 0"
        )
    }

    func testStopLetsTheAcceptedRequestFinish() throws {
        let pool = startPool(workers: 1)
        XCTAssertTrue(waitUntilServing() && eventually { pool.workerPIDs != nil })
        let worker = try XCTUnwrap(pool.workerPIDs?.first)

        let reply = Mutex<String?>(nil)
        let requestDone = DispatchSemaphore(value: 0)
        let path = listener.path
        Thread {
            let answer = UnixListener.exchange(path: path, line: "500")  // the worker takes 500 ms
            reply.withLock { $0 = answer }
            requestDone.signal()
        }.start()
        pause(.milliseconds(150))

        kill(getpid(), SIGTERM)
        XCTAssertEqual(pool.waitForExit(timeout: .seconds(3)), 0)
        XCTAssertEqual(requestDone.wait(timeout: .now() + 1), .success)
        XCTAssertEqual(reply.withLock { $0 }, "\(worker)\n")
        XCTAssertEqual(pool.supervisor.status.workers[0].lastExit, .exited(code: 0))
        XCTAssertFalse(logs.contains(.warning, "SIGKILL"), "the worker stopped by itself")
    }

    func testWorkerStopsWhenTheThreadThatSpawnedItEnds() throws {
        // PR_SET_PDEATHSIG fires when the spawning thread exits, the same as when a supervisor dies.
        let spawnerMayExit = DispatchSemaphore(value: 0)
        let spawned = Mutex<pid_t?>(nil)
        let descriptor = listener.descriptor
        Thread {
            spawned.withLock { $0 = try? Self.spawnWorkerProcess(listenFD: descriptor, supervisorPID: getpid()) }
            spawnerMayExit.wait()
        }.start()
        XCTAssertTrue(eventually { spawned.withLock { $0 } != nil })
        let pid = try XCTUnwrap(spawned.withLock { $0 })
        defer { if isRunning(pid) { kill(pid, SIGKILL); _ = reap(pid, timeout: .seconds(1)) } }
        XCTAssertTrue(waitUntilServing(), "worker is up, so PR_SET_PDEATHSIG is in place")

        spawnerMayExit.signal()
        XCTAssertEqual(reap(pid, timeout: .seconds(3)), .exited(0))
    }

    func testWorkerWhoseSupervisorIsAlreadyGoneStopsAtOnce() throws {
        let pid = try Self.spawnWorkerProcess(listenFD: listener.descriptor, supervisorPID: 1)
        defer { if isRunning(pid) { kill(pid, SIGKILL); _ = reap(pid, timeout: .seconds(1)) } }
        XCTAssertEqual(reap(pid, timeout: .seconds(3)), .exited(0))
    }

    // MARK: - Helpers

    private func startPool(workers: Int) -> SupervisorThread {
        let configuration = WorkerPoolConfiguration(
            executablePath: Self.testBinary,
            arguments: [WorkerProcessHost.testName],
            environment: [WorkerProcessHost.variable: "1"],
            workerCount: workers,
            listenFD: listener.descriptor,
            gracefulStopTimeout: .seconds(3)
        )
        let pool = SupervisorThread(configuration: configuration, logger: logs.logger)
        running = pool
        return pool
    }

    private func waitUntilServing() -> Bool {
        eventually(timeout: .seconds(10)) { UnixListener.exchange(path: listener.path, line: "0") != nil }
    }

    private static var testBinary: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Starts one worker directly, without a supervisor, with `listenFD` on fd 0.
    private static func spawnWorkerProcess(listenFD: Int32, supervisorPID: pid_t) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, listenFD, 0)
        let arguments = [testBinary, WorkerProcessHost.testName]
        let environment = ["\(WorkerProcessHost.variable)=1", "\(WorkerLifecycle.supervisorPIDVariable)=\(supervisorPID)"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let result = posix_spawn(&pid, testBinary, &actions, nil, argv, envp)
        guard result == 0 else { throw POSIXError(.init(rawValue: result) ?? .EIO) }
        return pid
    }

    private enum Ending: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Waits for a child to end, polling so a hung child fails the test instead of hanging it.
    private func reap(_ pid: pid_t, timeout: Duration) -> Ending? {
        var status: Int32 = 0
        var ended = false
        eventually(timeout: timeout) {
            ended = waitpid(pid, &status, WNOHANG) == pid
            return ended
        }
        guard ended else { return nil }
        return status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
    }
}

/// Sends requests back to back from its own thread until told to finish.
private final class LoadClient: Sendable {
    struct Result {
        var successes = 0
        var failures = 0
        var servedBy: Set<pid_t> = []
    }

    private let result = Mutex(Result())
    private let keepGoing = Atomic<Bool>(true)
    private let done = DispatchSemaphore(value: 0)

    init(path: String, delayMilliseconds: Int) {
        Thread { [self] in
            while keepGoing.load(ordering: .relaxed) {
                let reply = UnixListener.exchange(path: path, line: "\(delayMilliseconds)")
                result.withLock { result in
                    if let reply, let pid = pid_t(reply.dropLast()) {
                        result.successes += 1
                        result.servedBy.insert(pid)
                    } else {
                        result.failures += 1
                    }
                }
            }
            done.signal()
        }.start()
    }

    func finish() -> Result {
        keepGoing.store(false, ordering: .relaxed)
        done.wait()
        return result.withLock { $0 }
    }
}

/// Not a test: the body of the worker processes above. Run with `WORKERPOOL_TEST_WORKER=1`, it
/// accepts connections on fd 0 like a FastCGI worker, reads "<milliseconds>\n", waits that long,
/// answers "<pid>\n" and exits 0 once asked to stop (3 if accept fails otherwise). Without the
/// variable it returns at once.
final class WorkerProcessHost: XCTestCase {
    static let variable = "WORKERPOOL_TEST_WORKER"
    static let testName = "WorkerPoolTests.WorkerProcessHost/testServeAsWorker"

    func testServeAsWorker() {
        guard getenv(Self.variable) != nil else { return }
        var stopPipe: [Int32] = [-1, -1]
        guard pipe(&stopPipe) == 0 else { exit(4) }
        _ = fcntl(stopPipe[1], F_SETFL, O_NONBLOCK)
        WorkerLifecycle.installStopHandlers(notifying: stopPipe[1])
        WorkerLifecycle.stopWhenSupervisorDies()
        _ = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK)  // as FastCGIResponder does

        // Like a request loop: wait for a connection or the stop, never block in accept().
        var stopped = false
        while !stopped {
            var descriptors = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: stopPipe[0], events: Int16(POLLIN), revents: 0)]
            guard poll(&descriptors, 2, -1) > 0 else { continue }  // EINTR: the byte is in the pipe
            if descriptors[1].revents != 0 {
                stopped = true
                continue
            }
            let connection = accept(0, nil, nil)
            guard connection >= 0 else {
                if errno == EAGAIN || errno == EINTR { continue }  // another worker took it
                break
            }
            Self.serve(connection)  // SA_RESTART: a stop signal does not cut the answer short
            close(connection)
        }
        exit(stopped ? 0 : 3)
    }

    private static func serve(_ connection: Int32) {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while recv(connection, &byte, 1, 0) == 1, byte != UInt8(ascii: "\n") {
            line.append(byte)
        }
        let milliseconds = Int(String(decoding: line, as: UTF8.self)) ?? 0
        usleep(UInt32(milliseconds * 1000))
        let reply = Array("\(getpid())\n".utf8)
        _ = send(connection, reply, reply.count, Int32(MSG_NOSIGNAL))
    }
}
