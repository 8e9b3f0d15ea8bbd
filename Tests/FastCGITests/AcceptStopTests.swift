import FastCGI
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What `FastCGIResponder.accept()` (libfcgi's `FCGX_Accept_r` underneath) does when a worker is
/// told to stop. `WorkerLifecycle` (in WorkerPool) relies on exactly this: its SIGTERM handler
/// replaces the listening descriptor with /dev/null, and because it is installed with SA_RESTART
/// (so that libfcgi's reads of a new request's parameters finish), the interrupted `accept` is
/// restarted on /dev/null and fails with ENOTSOCK. Here the test does the replacing and
/// interrupts the responder's thread with its own signal, because this target cannot depend on
/// WorkerPool.
final class AcceptStopTests: XCTestCase {
    private var previousAction = sigaction()

    override func setUp() {
        // SIGUSR2 with a do-nothing handler and no SA_RESTART: it only interrupts system calls.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR2, &action, &previousAction)
    }

    override func tearDown() {
        sigaction(SIGUSR2, &previousAction, nil)
    }

    func testAcceptFailsAtOnceWhenTheListeningDescriptorIsNoSocket() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        replaceWithNullDevice(socket.descriptor)

        let responder = socket.serve(echoNothing)
        XCTAssertTrue(responder.waitUntilFinished())
        XCTAssertEqual(responder.lastAcceptError, ENOTSOCK)
    }

    func testInterruptedAcceptFailsOnceTheListeningDescriptorIsReplaced() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let responder = socket.serve(echoNothing)
        usleep(100_000)  // let it block in accept()

        replaceWithNullDevice(socket.descriptor)
        XCTAssertFalse(
            responder.waitUntilFinished(timeout: .milliseconds(300)), "a blocked accept() does not notice dup2 by itself"
        )
        responder.signal(SIGUSR2)
        XCTAssertTrue(responder.waitUntilFinished(), "EINTR, then libfcgi's retry on /dev/null fails")
        XCTAssertEqual(responder.lastAcceptError, ENOTSOCK)
    }

    func testStraySignalDoesNotEndTheAcceptLoop() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let responder = socket.serve { request in
            request.respond(status: 200, headers: [], body: Array("still here".utf8))
        }
        usleep(100_000)

        responder.signal(SIGUSR2)
        XCTAssertFalse(responder.waitUntilFinished(timeout: .milliseconds(200)))
        XCTAssertEqual(splitResponse(try cgiFCGI(connect: socket.path)).body, "still here")
    }

    func testInterruptedWaitOnAKeptAliveConnectionEndsTheAcceptLoop() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let responder = socket.serve { request in
            request.respond(status: 200, headers: [], body: Array("ok".utf8))
        }
        let client = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(client.request(params: ["REQUEST_METHOD": "GET"]))
        usleep(100_000)  // the responder now waits for this connection's next request or a new one

        replaceWithNullDevice(socket.descriptor)
        responder.signal(SIGUSR2)
        XCTAssertTrue(responder.waitUntilFinished(), "the wait is interrupted, the connection dropped, accept fails")
        XCTAssertEqual(responder.lastAcceptError, ENOTSOCK)
        XCTAssertTrue(client.peerClosed(), "nginx sees its idle kept-alive connection close")
    }

    func testStopBeforeWaitingOnAKeptAliveConnectionIsNotMissed() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let mayAcceptAgain = DispatchSemaphore(value: 0)
        let responder = socket.serve { request in
            request.respond(status: 200, headers: [], body: Array("ok".utf8))
            mayAcceptAgain.wait()  // the stop lands here, between requests, with no signal to come
        }
        let client = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(client.request(params: ["REQUEST_METHOD": "GET"]))

        replaceWithNullDevice(socket.descriptor)
        mayAcceptAgain.signal()
        XCTAssertTrue(responder.waitUntilFinished(), "/dev/null polls readable, so the kept-alive wait ends")
        XCTAssertEqual(responder.lastAcceptError, ENOTSOCK)
    }

    private func replaceWithNullDevice(_ descriptor: Int32) {
        let null = open("/dev/null", O_RDWR)
        dup2(null, descriptor)
        close(null)
    }
}

private let echoNothing: @Sendable (FastCGIRequest) -> Void = { request in
    request.respond(status: 204, headers: [], body: [])
}
