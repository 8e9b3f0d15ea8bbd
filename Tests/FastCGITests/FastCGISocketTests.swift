@testable import FastCGI
import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class FastCGISocketTests: XCTestCase {
    func testUnixSocketLetsOnlyOwnerAndGroupConnect() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }

        var info = stat()
        XCTAssertEqual(lstat(socket.path, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o7777, 0o660)
        XCTAssertEqual(fcntl(socket.descriptor, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
    }

    func testUnixSocketIsHandedToTheNamedOwnerAndGroup() throws {
        try XCTSkipUnless(geteuid() == 0, "chown needs root")
        let socket = try ListeningSocket(permissions: .init(mode: 0o660, owner: "nobody", group: "nogroup"))
        defer { socket.close() }

        var info = stat()
        XCTAssertEqual(lstat(socket.path, &info), 0)
        XCTAssertEqual(info.st_uid, getpwnam("nobody").pointee.pw_uid)
        XCTAssertEqual(info.st_gid, getgrnam("nogroup").pointee.gr_gid)
    }

    func testUnknownGroupIsReported() throws {
        let directory = try TemporaryDirectory(prefix: "fcgi-test")
        defer { directory.remove() }
        let path = directory.path + "/app.sock"
        XCTAssertThrowsError(
            try FastCGISocket.open(address: path, backlog: 1, permissions: .init(group: "no-such-group-here"))
        ) { error in
            XCTAssertEqual(error as? FastCGIError, .unknownGroup("no-such-group-here"))
        }
    }

    func testStaleSocketFileIsReplaced() throws {
        let directory = try TemporaryDirectory(prefix: "fcgi-test")
        defer { directory.remove() }
        let path = directory.path + "/app.sock"
        let first = try FastCGISocket.open(address: path, backlog: 1)
        close(first)  // the file stays behind, nobody listens: a crashed previous run

        let second = try ListeningSocket(descriptor: try FastCGISocket.open(address: path, backlog: 1), path: path)
        defer { second.close() }
        second.serve { $0.respond(status: 200, headers: [], body: []) }
        XCTAssertEqual(try cgiFCGI(connect: path).text, "Status: 200 OK\r\nContent-Length: 0\r\n\r\n")
    }

    func testInheritedDescriptorIsTakenOnlyWhenItIsAListeningStreamSocket() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        XCTAssertEqual(FastCGISocket.inherited(descriptor: socket.descriptor), socket.descriptor)

        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        defer { pair.forEach { close($0) } }
        XCTAssertNil(FastCGISocket.inherited(descriptor: pair[0]), "a connected socket is not a listener")

        var pipeEnds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { pipeEnds.forEach { close($0) } }
        XCTAssertNil(FastCGISocket.inherited(descriptor: pipeEnds[0]), "a pipe (or /dev/null) on fd 0 is not a listener")
        XCTAssertNil(FastCGISocket.inherited(descriptor: 9_999), "a closed descriptor")
    }

    func testSocketAnotherProcessListensOnIsNotTaken() throws {
        let socket = try ListeningSocket()
        defer { socket.close() }
        XCTAssertThrowsError(try FastCGISocket.open(address: socket.path, backlog: 1)) { error in
            XCTAssertEqual(error as? FastCGIError, .socketInUse(path: socket.path))
        }
    }

    func testFileThatIsNotASocketIsLeftAlone() throws {
        let directory = try TemporaryDirectory(prefix: "fcgi-test")
        defer { directory.remove() }
        let path = directory.path + "/app.sock"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))

        XCTAssertThrowsError(try FastCGISocket.open(address: path, backlog: 1)) { error in
            XCTAssertEqual(error as? FastCGIError, .socketPathOccupied(path: path))
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep me".utf8))
    }

    func testTCPOnLoopbackServesRequests() throws {
        let address = "127.0.0.1:\(try freeLoopbackPort())"
        let socket = try ListeningSocket(descriptor: try FastCGISocket.open(address: address, backlog: 16), path: address)
        defer { socket.close() }
        socket.serve { request in
            request.respond(status: 404, headers: [], body: Array("{}".utf8))
        }

        let output = try cgiFCGI(connect: address)
        XCTAssertEqual(output.text, "Status: 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
    }

    func testAddressesAreParsedAsDocumented() throws {
        XCTAssertEqual(try ListenAddress(parsing: "/run/app.sock"), .unix(path: "/run/app.sock"))
        XCTAssertEqual(try ListenAddress(parsing: "./app.sock"), .unix(path: "./app.sock"))
        XCTAssertEqual(try ListenAddress(parsing: "127.0.0.1:9000"), .tcp(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: ":9000"), .tcp(host: "", port: 9000))

        for invalid in ["app.sock", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host:port", ""] {
            XCTAssertThrowsError(try ListenAddress(parsing: invalid)) { error in
                XCTAssertEqual(error as? FastCGIError, .invalidAddress(invalid))
            }
        }
        let tooLong = "/tmp/" + String(repeating: "x", count: 120)
        XCTAssertThrowsError(try ListenAddress(parsing: tooLong)) { error in
            XCTAssertEqual(error as? FastCGIError, .socketPathTooLong(path: tooLong, maximumBytes: 107))
        }
    }

    /// A port the kernel just handed out and released; good enough for a test on loopback.
    private func freeLoopbackPort() throws -> UInt16 {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(probe, $0, length) == 0 && getsockname(probe, $0, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return UInt16(bigEndian: address.sin_port)
    }
}
