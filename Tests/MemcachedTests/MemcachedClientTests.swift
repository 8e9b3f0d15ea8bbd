import Memcached
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs against the real memcached of the test stack (`make test` sets MEMCACHED_SERVERS: its unix
/// socket, or 127.0.0.1:port with MC_LISTEN=tcp).
let memcachedServers = getenv("MEMCACHED_SERVERS").map { String(cString: $0) }

@Suite(.enabled(if: memcachedServers != nil, "needs MEMCACHED_SERVERS (make test starts a memcached)"))
struct MemcachedClientTests {
    func client() throws -> MemcachedClient {
        try MemcachedClient(configuration: .init(servers: memcachedServers!))
    }

    func uniqueKey(_ name: String) -> String { "test:\(name):\(getpid()):\(random())" }

    @Test func setGetDelete() throws {
        let cache = try client()
        let key = uniqueKey("roundtrip")
        #expect(try cache.get(key) == nil)
        let value = Array("{\"a\":1}\r\nEND\r\n".utf8) + [0, 255]
        try cache.set(key, value: value, ttlSeconds: 60)
        #expect(try cache.get(key) == value)
        try cache.delete(key)
        #expect(try cache.get(key) == nil)
        try cache.delete(key)
    }

    @Test func getManyAnswersInTheOrderAsked() throws {
        let cache = try client()
        let (first, missing, last) = (uniqueKey("many-a"), uniqueKey("many-none"), uniqueKey("many-b"))
        try cache.set(first, value: Array("one".utf8), ttlSeconds: 60)
        try cache.set(last, value: [], ttlSeconds: 60)
        #expect(try cache.get(many: [last, missing, first]) == [[], nil, Array("one".utf8)])
        #expect(try cache.get(many: [missing]) == [nil])
        // The client is usable for single gets after a multi-get.
        #expect(try cache.get(first) == Array("one".utf8))
        #expect(throws: MemcachedError.self) { try cache.get(many: [first, "bad key"]) }
    }

    @Test func addStoresOnlyWhereNothingIs() throws {
        let cache = try client()
        let key = uniqueKey("add")
        #expect(try cache.add(key, value: [1], ttlSeconds: 60))
        #expect(try !cache.add(key, value: [2], ttlSeconds: 60))
        #expect(try cache.get(key) == [1])
    }

    @Test func entriesExpire() throws {
        let cache = try client()
        let key = uniqueKey("ttl")
        try cache.set(key, value: [1], ttlSeconds: 1)
        #expect(try cache.get(key) == [1])
        sleep(2)
        #expect(try cache.get(key) == nil)
    }

    @Test func refusesKeysTheProtocolCannotCarry() throws {
        let cache = try client()
        for key in ["", "a b", "line\nbreak", String(repeating: "k", count: 251)] {
            #expect(throws: MemcachedError.invalidKey(key)) { try cache.get(key) }
        }
    }

    @Test func deadServerFailsFastAndIsSkipped() throws {
        let cache = try MemcachedClient(configuration: .init(servers: "127.0.0.1:1", timeoutMilliseconds: 20))
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        for _ in 0..<20 {
            #expect(throws: MemcachedError.self) { try cache.get("k") }
        }
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &end)
        let elapsedMs = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1_000_000
        #expect(elapsedMs < 500, "20 calls against a dead server took \(elapsedMs) ms")
    }

    @Test func deadUnixSocketFailsFast() throws {
        let cache = try MemcachedClient(configuration: .init(servers: "/tmp/no-such-memcached.sock", timeoutMilliseconds: 20))
        #expect(throws: MemcachedError.self) { try cache.get("k") }
    }

    @Test func keysOnEachServerLandOnTheirServer() throws {
        // The live server first, then a dead one; then the other way round. Only the key meant
        // for the live server can be stored.
        let dead = "127.0.0.1:1"
        for servers in ["\(memcachedServers!),\(dead)", "\(dead),\(memcachedServers!)"] {
            let cache = try MemcachedClient(configuration: .init(servers: servers, timeoutMilliseconds: 20))
            let keys = try cache.keysOnEachServer(prefix: uniqueKey("copy") + ":")
            #expect(keys.count == 2 && keys[0] != keys[1])
            let live = servers.hasPrefix(dead) ? 1 : 0
            try cache.set(keys[live], value: [1], ttlSeconds: 10)
            #expect(throws: MemcachedError.self) { try cache.set(keys[1 - live], value: [1], ttlSeconds: 10) }
            // A server that cannot be reached reads as nothing in a multi-get; the other answers.
            let values = try cache.get(many: keys)
            #expect(values[live] == [1] && values[1 - live] == nil)
        }
    }

    @Test func keysOnEachServerAreTheSameForEveryClient() throws {
        let prefix = uniqueKey("same") + ":"
        let servers = "10.0.0.1:11211,10.0.0.2:11211,10.0.0.3:11211"
        let first = try MemcachedClient(configuration: .init(servers: servers)).keysOnEachServer(prefix: prefix)
        let second = try MemcachedClient(configuration: .init(servers: servers)).keysOnEachServer(prefix: prefix)
        #expect(first == second && Set(first).count == 3)
        #expect(try client().keysOnEachServer(prefix: prefix) == [prefix + "0"])
    }

    @Test func rejectsAnEmptyServerList() {
        #expect(throws: MemcachedError.invalidServerList(" , ")) { try MemcachedClient(configuration: .init(servers: " , ")) }
    }
}
