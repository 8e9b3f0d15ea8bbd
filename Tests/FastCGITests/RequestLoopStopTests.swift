import FastCGI
import Foundation
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// How a request loop (`FastCGIResponder.accept()`) ends when its `StopLatch` is tripped: at once
/// when it holds nothing; otherwise once nginx has closed the connections it keeps alive (or the
/// drain deadline passed), answering what nginx sends on them meanwhile, the request in hand too. `RequestLoopStateMachineTests` has the rules without sockets.
final class RequestLoopStopTests: XCTestCase {
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

    func testTrippedLatchEndsAnIdleLoopAtOnce() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loop = socket.serve(answerOK)
        usleep(100_000)  // let it wait for a connection

        socket.stopLatch.trip()
        XCTAssertTrue(loop.waitUntilFinished(timeout: .milliseconds(500)))
        XCTAssertNil(loop.acceptFailure)
    }

    func testLatchTrippedBeforeTheLoopStartsIsNotMissed() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.stopLatch.trip()
        let loop = socket.serve(answerOK)
        XCTAssertTrue(loop.waitUntilFinished(timeout: .milliseconds(500)))
    }

    func testAWriteToTheLatchWakesItsWaiterWhichStopsTheLoops() throws {
        // WorkerLifecycle's signal handler can only write; the worker's main thread waits.
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loop = socket.serve(answerOK)
        let latch = socket.stopLatch
        Thread { latch.waitUntilTripped() }.start()
        usleep(50_000)
        var byte: UInt8 = 1
        XCTAssertEqual(write(socket.stopLatch.writeDescriptor, &byte, 1), 1)
        XCTAssertTrue(loop.waitUntilFinished(timeout: .milliseconds(500)))
        XCTAssertTrue(socket.stopLatch.isTripped)
    }

    func testStraySignalDoesNotEndTheLoop() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loop = socket.serve(answerOK)
        usleep(100_000)

        loop.signal(SIGUSR2)
        XCTAssertFalse(loop.waitUntilFinished(timeout: .milliseconds(200)))
        XCTAssertEqual(splitResponse(try cgiFCGI(connect: socket.path)).body, "ok")
    }

    func testListeningDescriptorThatIsNoSocketIsRefused() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let null = open("/dev/null", O_RDWR)
        dup2(null, socket.descriptor)
        close(null)

        XCTAssertThrowsError(try KeptConnections(listenFD: socket.descriptor)) { error in
            XCTAssertEqual(error as? FastCGIError, .acceptFailed(errno: EPERM))
        }
    }

    func testStopKeepsAnIdleKeptConnectionOpenUntilThePeerClosesIt() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loop = socket.serve(drainTimeout: .seconds(5), answerOK)
        let client = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(client.request(params: ["REQUEST_METHOD": "GET"]))

        socket.stopLatch.trip()
        XCTAssertTrue(client.staysQuiet(for: .milliseconds(300)), "an idle connection nginx may reuse is not closed under it")
        XCTAssertFalse(loop.waitUntilFinished(timeout: .zero))
        client.disconnect()  // nginx's upstream keepalive_timeout, or a reload
        XCTAssertTrue(loop.waitUntilFinished(timeout: .milliseconds(500)))
    }

    func testRequestsSentWhileDrainingAreAnsweredAndTheConnectionStaysNginxsToClose() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loop = socket.serve(drainTimeout: .seconds(5), answerOK)
        let client = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(client.request(params: ["REQUEST_METHOD": "GET"]))

        socket.stopLatch.trip()
        usleep(100_000)
        for _ in 0..<3 {
            let reply = try XCTUnwrap(client.request(params: ["REQUEST_METHOD": "GET"]), "nginx reused the connection: answered")
            XCTAssertTrue(String(decoding: reply, as: UTF8.self).hasSuffix("ok"))
        }
        XCTAssertTrue(client.staysQuiet(for: .milliseconds(100)), "never closed under nginx, which may be reusing it")
        client.disconnect()
        XCTAssertTrue(loop.waitUntilFinished(timeout: .milliseconds(500)))
    }

    func testDrainEndsAtItsDeadline() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loop = socket.serve(drainTimeout: .milliseconds(300), answerOK)
        let client = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(client.request(params: ["REQUEST_METHOD": "GET"]))

        let stoppedAt = ContinuousClock.now
        socket.stopLatch.trip()
        XCTAssertTrue(loop.waitUntilFinished(timeout: .seconds(1)))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - stoppedAt, .milliseconds(250))
        socket.close()  // the worker exits: what it still held is closed
        XCTAssertTrue(client.peerClosed())
    }

    func testStopWithARequestInHandAnswersItInFull() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let inHandler = DispatchSemaphore(value: 0)
        let mayAnswer = DispatchSemaphore(value: 0)
        let loop = socket.serve(drainTimeout: .seconds(5)) { request in
            inHandler.signal()
            mayAnswer.wait()
            request.respond(status: 200, headers: [], body: Array(repeating: UInt8(ascii: "x"), count: 100_000))
        }
        let client = try RawFastCGIClient(unixSocket: socket.path)
        let reply = Mutex<[UInt8]?>(nil)
        let replied = DispatchSemaphore(value: 0)
        let clientBox = UncheckedClient(client)
        Thread {
            let bytes = clientBox.client.request(params: ["REQUEST_METHOD": "GET"])
            reply.withLock { $0 = bytes }
            replied.signal()
        }.start()

        XCTAssertEqual(inHandler.wait(timeout: .now() + 2), .success)
        socket.stopLatch.trip()
        mayAnswer.signal()
        XCTAssertEqual(replied.wait(timeout: .now() + 2), .success)
        let body = try XCTUnwrap(reply.withLock { $0 })
        XCTAssertTrue(body.suffix(100_000).allSatisfy { $0 == UInt8(ascii: "x") })
        XCTAssertFalse(loop.waitUntilFinished(timeout: .milliseconds(100)), "the kept connection is still nginx's to close")
        client.disconnect()
        XCTAssertTrue(loop.waitUntilFinished(timeout: .milliseconds(500)))
    }
}

private let answerOK: @Sendable (FastCGIRequest) -> Void = { request in
    request.respond(status: 200, headers: [], body: Array("ok".utf8))
}
