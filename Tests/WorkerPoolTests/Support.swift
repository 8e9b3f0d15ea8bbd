import Foundation
import Logging
import Synchronization
import TestSupport
import WorkerPool
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Keeps what a `Logger` was asked to log, for assertions on level and message.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let entries = Mutex<[Entry]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    var recorded: [Entry] { entries.withLock { $0 } }

    func contains(_ level: Logger.Level, _ fragment: String) -> Bool {
        recorded.contains { $0.level == level && $0.message.contains(fragment) }
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.entries.withLock { $0.append(Entry(level: event.level, message: "\(event.message)")) }
        }
    }
}

/// A `Supervisor` running on its own thread, as `main` would run it.
final class SupervisorThread: Sendable {
    let supervisor: Supervisor
    private let exitCode = Mutex<Int32?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    init(configuration: WorkerPoolConfiguration, logger: Logger) {
        supervisor = Supervisor(configuration: configuration, logger: logger)
        let thread = Thread { [self] in
            let code = supervisor.run()
            exitCode.withLock { $0 = code }
            finished.signal()
        }
        thread.start()
    }

    /// The pids of the current workers, once every slot has one.
    var workerPIDs: [pid_t]? {
        let workers = supervisor.status.workers
        let pids = workers.compactMap(\.pid)
        return pids.count == workers.count ? pids : nil
    }

    /// `run()`'s exit code, once it returned within `timeout`.
    func waitForExit(timeout: Duration = .seconds(5)) -> Int32? {
        let milliseconds = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard finished.wait(timeout: .now() + .milliseconds(milliseconds)) == .success else { return nil }
        return exitCode.withLock { $0 }
    }

    /// Stops the pool if a test left it running, so no worker outlives the test.
    func stopIfRunning() {
        if exitCode.withLock({ $0 }) == nil {
            supervisor.stop()
            _ = waitForExit(timeout: .seconds(15))
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
@discardableResult
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(20_000)  // a signal may cut this short; the loop does not mind
    }
    return condition()
}

/// Sleeps the whole `duration`: the supervisor's SIGCHLD handler would cut `usleep` short.
func pause(_ duration: Duration) {
    let deadline = ContinuousClock.now + duration
    while ContinuousClock.now < deadline {
        usleep(10_000)
    }
}

func isRunning(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0
}

/// A listening unix socket, standing in for the FastCGI socket the real supervisor shares.
struct UnixListener {
    let path: String
    let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = Self.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(descriptor, 64) == 0 else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
    }

    func close() {
        Glibc.close(descriptor)
    }

    /// Sends one line and returns the reply, or `nil` when the exchange failed.
    static func exchange(path: String, line: String) -> String? {
        let connection = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(connection, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return nil }
        let request = Array((line + "\n").utf8)
        guard send(connection, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count < 0 { return nil }
            if count == 0 { break }
            reply += buffer[..<count]
        }
        return reply.isEmpty ? nil : String(decoding: reply, as: UTF8.self)
    }

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        return address
    }
}
