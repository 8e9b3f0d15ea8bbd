import FastCGI
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class AcceptQueueTests: XCTestCase {
    func testCountsConnectionsNobodyAcceptedYet() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        let empty = try XCTUnwrap(AcceptQueue.of(socket.descriptor))
        XCTAssertEqual(empty.depth, 0)
        XCTAssertGreaterThan(empty.limit, 0)

        let clients = try (0..<3).map { _ in try RawFastCGIClient(unixSocket: socket.path) }
        XCTAssertEqual(AcceptQueue.of(socket.descriptor)?.depth, 3)

        let accepted = accept(socket.descriptor, nil, nil)
        XCTAssertGreaterThanOrEqual(accepted, 0)
        close(accepted)
        XCTAssertEqual(AcceptQueue.of(socket.descriptor)?.depth, 2)
        withExtendedLifetime(clients) {}
    }

    func testAnythingButAListeningUnixSocketHasNone() {
        XCTAssertNil(AcceptQueue.of(-1))
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { pipeEnds.forEach { close($0) } }
        XCTAssertNil(AcceptQueue.of(pipeEnds[0]))
    }
}
