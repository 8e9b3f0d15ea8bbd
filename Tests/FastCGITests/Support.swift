import FastCGI
import Foundation
import Synchronization
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A program a test runs is not installed: a failure, never a skip (`make test` installs it).
struct MissingTool: Error, CustomStringConvertible {
    let path: String
    let installedBy: String

    var description: String { "\(path) is missing: it is installed by \(installedBy)" }
}

/// The result of running a child process to completion.
struct ProcessOutput {
    var stdout: [UInt8]
    var exitStatus: Int32

    var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs a program with the given environment and stdin, collecting stdout; killed after `timeout`.
/// Plain posix_spawn, so nothing installs process-wide SIGCHLD handling behind the tests' back.
func runProcess(
    _ path: String,
    arguments: [String],
    environment: [String: String],
    stdin input: [UInt8] = [],
    timeout: Duration = .seconds(5)
) throws -> ProcessOutput {
    var inputPipe: [Int32] = [-1, -1]
    var outputPipe: [Int32] = [-1, -1]
    guard pipe(&inputPipe) == 0, pipe(&outputPipe) == 0 else { throw POSIXError(.EMFILE) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inputPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
    for descriptor in inputPipe + outputPipe {
        posix_spawn_file_actions_addclose(&actions, descriptor)
    }

    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }

    var pid = pid_t()
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
    close(inputPipe[0])
    close(outputPipe[1])
    guard spawned == 0 else {
        close(inputPipe[1])
        close(outputPipe[0])
        throw POSIXError(.init(rawValue: spawned) ?? .EIO)
    }

    // Written from another thread: a large body and a large reply would otherwise fill both pipes.
    let inputDone = DispatchSemaphore(value: 0)
    let inputFD = inputPipe[1]
    Thread {
        input.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(inputFD, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        close(inputFD)
        inputDone.signal()
    }.start()
    defer { inputDone.wait() }

    let deadline = ContinuousClock.now + timeout
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while ContinuousClock.now < deadline {
        var descriptor = pollfd(fd: outputPipe[0], events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 100) >= 0 || errno == EINTR else { break }
        if descriptor.revents == 0 { continue }
        let count = read(outputPipe[0], &buffer, buffer.count)
        if count <= 0 { break }
        output += buffer[..<count]
    }
    close(outputPipe[0])

    var status: Int32 = 0
    if ContinuousClock.now >= deadline { kill(pid, SIGKILL) }
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return ProcessOutput(stdout: output, exitStatus: status)
}

/// Sends one request through the real `cgi-fcgi` client (Debian package libfcgi-bin).
func cgiFCGI(
    connect address: String,
    method: String = "GET",
    query: String = "",
    body: [UInt8] = [],
    extra: [String: String] = [:]
) throws -> ProcessOutput {
    let client = "/usr/bin/cgi-fcgi"
    guard FileManager.default.isExecutableFile(atPath: client) else {
        throw MissingTool(path: client, installedBy: "scripts/install-deps.sh (Debian package libfcgi-bin)")
    }
    var environment = [
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "REQUEST_URI": "/test" + (query.isEmpty ? "" : "?" + query),
        "SCRIPT_NAME": "/test",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": body.isEmpty ? "" : String(body.count),
    ]
    environment.merge(extra) { $1 }
    return try runProcess(client, arguments: ["-bind", "-connect", address], environment: environment, stdin: body)
}

/// Splits a CGI response into its header lines and body.
func splitResponse(_ output: ProcessOutput) -> (headers: [String], body: String) {
    let text = output.text
    guard let end = text.range(of: "\r\n\r\n") else { return ([], text) }
    let headers = text[..<end.lowerBound].components(separatedBy: "\r\n")
    return (headers, String(text[end.upperBound...]))
}

/// A `FastCGIResponder` serving on its own thread until its stop latch is tripped.
final class ResponderThread: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let threadID = Mutex<pthread_t?>(nil)
    private let failure = Mutex<FastCGIError?>(nil)

    init(
        connections: KeptConnections, stopLatch: StopLatch, drainTimeout: Duration,
        handler: @escaping @Sendable (FastCGIRequest) -> Void
    ) {
        let thread = Thread { [self] in
            threadID.withLock { $0 = pthread_self() }
            do throws(FastCGIError) {
                let responder = try FastCGIResponder(connections: connections, stopLatch: stopLatch, drainTimeout: drainTimeout)
                while let request = try responder.accept() {
                    handler(request)
                }
            } catch {
                failure.withLock { $0 = error }
            }
            finished.signal()
        }
        thread.start()
        while threadID.withLock({ $0 }) == nil { usleep(1000) }
    }

    /// Why the loop ended with an error; `nil` after a stop.
    var acceptFailure: FastCGIError? { failure.withLock { $0 } }

    func signal(_ signal: Int32) {
        if let thread = threadID.withLock({ $0 }) { pthread_kill(thread, signal) }
    }

    /// Whether the request loop ended within `timeout`.
    func waitUntilFinished(timeout: Duration = .seconds(3)) -> Bool {
        let milliseconds = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard finished.wait(timeout: .now() + .milliseconds(milliseconds)) == .success else { return false }
        finished.signal()  // stays finished for the next caller
        return true
    }
}

/// A listening socket for one test, and the responder threads (request loops) serving it.
final class ListeningSocket {
    let path: String
    let descriptor: Int32
    /// Shared by every responder of this socket, as a worker's loops share them.
    let stopLatch: StopLatch
    private(set) var connections: KeptConnections?
    private let directory: TemporaryDirectory?
    private var responders: [ResponderThread] = []
    private var isClosed = false

    /// A unix socket in a fresh temporary directory.
    convenience init(permissions: FastCGISocket.Permissions = .init()) throws {
        let directory = try TemporaryDirectory(prefix: "fcgi-test")
        let path = directory.path + "/app.sock"
        let descriptor = try FastCGISocket.open(address: path, backlog: 16, permissions: permissions)
        try self.init(descriptor: descriptor, path: path, directory: directory)
    }

    /// Takes over a descriptor `FastCGISocket.open` returned; `directory` is removed on close.
    init(descriptor: Int32, path: String, directory: TemporaryDirectory? = nil) throws {
        try FastCGIResponder.initializeLibrary()  // on the test's thread, before any responder thread
        self.descriptor = descriptor
        self.path = path
        self.directory = directory
        stopLatch = try StopLatch()
        connections = try KeptConnections(listenFD: descriptor)
    }

    /// Starts one more request loop on the socket.
    /// - Parameter drainTimeout: how long a stopping loop keeps an idle kept-alive connection.
    @discardableResult
    func serve(
        drainTimeout: Duration = .milliseconds(500),
        _ handler: @escaping @Sendable (FastCGIRequest) -> Void
    ) -> ResponderThread {
        let responder = ResponderThread(connections: connections!, stopLatch: stopLatch, drainTimeout: drainTimeout, handler: handler)
        responders.append(responder)
        return responder
    }

    /// Trips the latch, waits for the loops, lets go of the connection set (which closes the
    /// connections still held), then closes the socket; only the first call does anything.
    /// Waiting for the threads before closing keeps a late one from accepting on a reused
    /// descriptor number.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        stopLatch.trip()
        for responder in responders {
            XCTAssertTrue(responder.waitUntilFinished(timeout: .seconds(5)), "responder thread did not stop")
        }
        responders.removeAll()
        connections = nil
        Glibc.close(descriptor)
        directory?.remove()
    }
}

/// Hands the one client to the thread that uses it while the test thread waits; the test thread
/// touches it again only after that thread signalled it is done with it.
final class UncheckedClient: @unchecked Sendable {
    let client: RawFastCGIClient
    init(_ client: RawFastCGIClient) { self.client = client }
}
