import FastCGI
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Echoes what the request carried, so a test can see what the responder read.
private let echo: @Sendable (FastCGIRequest) -> Void = { request in
    let body = request.readBody(limit: 1024)
    let text = "method=\(request.param("REQUEST_METHOD") ?? "-") query=\(request.param("QUERY_STRING") ?? "-") "
        + "length=\(request.contentLength.map(String.init) ?? "-") body=\(String(decoding: body, as: UTF8.self))"
    request.respond(
        status: 200,
        headers: [("Content-Type", "text/plain; charset=utf-8"), ("X-Test", "yes")],
        body: Array(text.utf8)
    )
}

final class FastCGIResponderTests: XCTestCase {
    func testAnswersWithStatusLineHeadersAndBody() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve(echo)

        let output = try cgiFCGI(connect: socket.path, query: "hours=2&limit=5")
        XCTAssertEqual(output.exitStatus, 0)
        let (headers, body) = splitResponse(output)
        XCTAssertEqual(body, "method=GET query=hours=2&limit=5 length=- body=")
        XCTAssertEqual(headers, [
            "Status: 200 OK",
            "Content-Type: text/plain; charset=utf-8",
            "X-Test: yes",
            "Content-Length: \(body.utf8.count)",
        ])
    }

    func testReadsTheBodyUpToContentLengthAndNeverBeyondTheLimit() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve { request in
            let body = request.readBody(limit: 5)
            request.respond(status: 200, headers: [], body: body)
        }

        let short = try cgiFCGI(connect: socket.path, method: "POST", body: Array("abc".utf8))
        XCTAssertEqual(splitResponse(short).body, "abc")
        let long = try cgiFCGI(connect: socket.path, method: "POST", body: Array("abcdefghij".utf8))
        XCTAssertEqual(splitResponse(long).body, "abcde")
    }

    func testUnreadBodyDoesNotCutTheResponseShort() throws {
        // Closing a unix socket with unread input resets it; the responder drains the input first.
        let socket = try ListeningSocket()
        defer { socket.close() }
        let reply = [UInt8](repeating: UInt8(ascii: "r"), count: 100_000)
        socket.serve { request in
            request.respond(status: 200, headers: [], body: reply)  // the body is never read
        }

        let output = try cgiFCGI(connect: socket.path, method: "POST", body: [UInt8](repeating: 1, count: 300_000))
        XCTAssertEqual(output.exitStatus, 0)
        XCTAssertEqual(splitResponse(output).body, String(decoding: reply, as: UTF8.self))
    }

    func testStatusesCarryTheirReasonPhrase() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve { request in
            let status = Int(request.param("QUERY_STRING") ?? "") ?? 500
            request.respond(status: status, headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
        }

        let expected = [
            200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Content Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
        ]
        for (status, reason) in expected {
            let output = try cgiFCGI(connect: socket.path, query: String(status))
            XCTAssertEqual(splitResponse(output).headers.first, "Status: \(status) \(reason)")
        }
        let unusual = try cgiFCGI(connect: socket.path, query: "299")
        XCTAssertEqual(splitResponse(unusual).headers.first, "Status: 299")
    }

    func testRespondingTwiceWritesOneResponse() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let secondResult = Mutex<Bool?>(nil)
        socket.serve { request in
            request.respond(status: 200, headers: [], body: Array("first".utf8))
            let again = request.respond(status: 500, headers: [], body: Array("second".utf8))
            secondResult.withLock { $0 = again }
            request.finish()  // harmless too
            XCTAssertNil(request.param("REQUEST_METHOD"), "a finished request has no parameters left")
        }

        let output = try cgiFCGI(connect: socket.path)
        XCTAssertEqual(output.text, "Status: 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        socket.close()  // waits for the handler, which runs on after the client has its answer
        XCTAssertEqual(secondResult.withLock { $0 }, false)
    }

    func testLineBreaksInHeadersCannotAddHeaders() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve { request in
            request.respond(
                status: 200,
                headers: [("X-Request-Id", "abc\r\nSet-Cookie: stolen=1"), ("Content-Length", "2")],
                body: Array("ok".utf8)
            )
        }

        let (headers, body) = splitResponse(try cgiFCGI(connect: socket.path))
        XCTAssertEqual(headers, ["Status: 200 OK", "X-Request-Id: abc  Set-Cookie: stolen=1", "Content-Length: 2"])
        XCTAssertEqual(body, "ok")
    }

    func testParamsListsWhatTheServerSent() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve { request in
            let lines = request.params
                .filter { $0.name.hasPrefix("HTTP_") || $0.name == "REQUEST_URI" }
                .map { "\($0.name)=\($0.value)" }
                .sorted()
            request.respond(status: 200, headers: [], body: Array(lines.joined(separator: "\n").utf8))
        }

        let output = try cgiFCGI(
            connect: socket.path,
            query: "a=1",
            extra: ["HTTP_AUTHORIZATION": "Bearer x.y.z", "HTTP_X_REQUEST_ID": "r-1"]
        )
        XCTAssertEqual(splitResponse(output).body, "HTTP_AUTHORIZATION=Bearer x.y.z\nHTTP_X_REQUEST_ID=r-1\nREQUEST_URI=/test?a=1")
    }

    func testIdleKeptConnectionsNeverStallNewConnectionsEvenWithOneLoop() throws {
        // nginx holds idle connections, possibly more than there are loops. A loop waits on all
        // it holds and on the listening socket at once, so none of them pins it.
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve(echo)  // a single loop

        let idle = try (0..<3).map { _ in try RawFastCGIClient(unixSocket: socket.path) }
        for connection in idle {
            XCTAssertNotNil(connection.request(params: ["REQUEST_METHOD": "GET"]))
        }
        for query in ["a", "b", "c"] {
            XCTAssertEqual(splitResponse(try cgiFCGI(connect: socket.path, query: query)).body, "method=GET query=\(query) length=- body=")
        }
        XCTAssertTrue(idle.allSatisfy { $0.staysQuiet(for: .milliseconds(50)) }, "idle kept connections are never closed under nginx")
        for (index, connection) in idle.enumerated().reversed() {
            let reply = connection.request(params: ["REQUEST_METHOD": "GET", "QUERY_STRING": "idle\(index)"])
            XCTAssertTrue(String(decoding: reply ?? [], as: UTF8.self).hasSuffix("query=idle\(index) length=- body="), "and still serves")
        }
    }

    func testARequestOnAKeptConnectionGoesToAFreeLoopWhileAnotherIsBusy() throws {
        // The loops of a process share the kept connections: a request never waits behind a busy
        // loop while another is free, whichever loop served its connection before.
        let socket = try ListeningSocket()
        defer { socket.close() }
        let release = DispatchSemaphore(value: 0)
        let handler: @Sendable (FastCGIRequest) -> Void = { request in
            if request.param("QUERY_STRING") == "block" { release.wait() }
            echo(request)
        }
        socket.serve(handler)
        socket.serve(handler)
        let busy = try RawFastCGIClient(unixSocket: socket.path)
        let other = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(busy.request(params: ["REQUEST_METHOD": "GET"]))
        XCTAssertNotNil(other.request(params: ["REQUEST_METHOD": "GET"]))

        let busyBox = UncheckedClient(busy)
        let busyDone = DispatchSemaphore(value: 0)
        Thread {
            _ = busyBox.client.request(params: ["REQUEST_METHOD": "GET", "QUERY_STRING": "block"])
            busyDone.signal()
        }.start()
        usleep(100_000)  // one loop is now inside the blocking request
        for round in 0..<5 {
            let reply = other.request(params: ["REQUEST_METHOD": "GET", "QUERY_STRING": "free\(round)"])
            XCTAssertTrue(String(decoding: reply ?? [], as: UTF8.self).hasSuffix("query=free\(round) length=- body="))
        }
        release.signal()
        XCTAssertEqual(busyDone.wait(timeout: .now() + 2), .success)
    }

    func testConnectionTheWebServerClosesIsDroppedAndTheLoopGoesOn() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve(echo)
        let first = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(first.request(params: ["REQUEST_METHOD": "GET"]))
        first.disconnect()
        let second = try RawFastCGIClient(unixSocket: socket.path)
        XCTAssertNotNil(second.request(params: ["REQUEST_METHOD": "GET"]))
    }

    func testLoopsThatLoseTheRaceForAConnectionKeepServing() throws {
        // Every free loop wakes for a new connection; the losers get EAGAIN and poll again.
        let socket = try ListeningSocket()
        defer { socket.close() }
        let loops = (0..<4).map { _ in socket.serve(echo) }
        for round in 0..<20 {
            XCTAssertEqual(splitResponse(try cgiFCGI(connect: socket.path, query: "r\(round)")).body, "method=GET query=r\(round) length=- body=")
        }
        XCTAssertTrue(loops.allSatisfy { !$0.waitUntilFinished(timeout: .zero) && $0.acceptFailure == nil })
    }

    func testLoopsServeConcurrentKeptConnectionsEachWithItsOwnAnswers() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        for _ in 0..<4 { socket.serve(echo) }
        let mismatches = Atomic<Int>(0)
        let answered = Atomic<Int>(0)
        let done = DispatchGroup()
        let path = socket.path
        for client in 0..<4 {
            done.enter()
            Thread {
                defer { done.leave() }
                guard let connection = try? RawFastCGIClient(unixSocket: path) else { return }
                for index in 0..<250 {
                    let query = "c\(client)-\(index)"
                    let reply = connection.request(params: ["REQUEST_METHOD": "GET", "QUERY_STRING": query])
                    if let reply, String(decoding: reply, as: UTF8.self).hasSuffix("query=\(query) length=- body=") {
                        answered.add(1, ordering: .relaxed)
                    } else {
                        mismatches.add(1, ordering: .relaxed)
                    }
                }
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(answered.load(ordering: .relaxed), 1_000)
        XCTAssertEqual(mismatches.load(ordering: .relaxed), 0)
    }

    func testKeptAliveConnectionServesSeveralRequests() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        socket.serve(echo)

        let client = try RawFastCGIClient(unixSocket: socket.path)
        for query in ["first", "second", "third"] {
            let stdout = try XCTUnwrap(client.request(params: ["REQUEST_METHOD": "GET", "QUERY_STRING": query]))
            XCTAssertTrue(String(decoding: stdout, as: UTF8.self).hasSuffix("query=\(query) length=- body="))
        }
    }
}
