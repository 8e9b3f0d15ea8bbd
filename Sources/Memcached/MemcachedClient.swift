#if canImport(Glibc)
import Glibc
#endif
import CMemcached

/// Why a memcached call failed.
public enum MemcachedError: Error, Equatable, Sendable {
    /// The server list could not be parsed (`host:port` and `/unix/socket` entries, comma-separated).
    case invalidServerList(String)
    /// A key memcached's ASCII protocol cannot carry (empty, over 250 bytes, space or control byte).
    case invalidKey(String)
    /// No server answered in time, or the server is being skipped after a failure.
    case unavailable(message: String)
}

/// A libmemcached client speaking the ASCII protocol, owned by a single worker.
///
/// Timeouts are milliseconds, not libmemcached's seconds-long defaults. A failed operation is
/// tried once more (a restarted memcached leaves idle connections that fail their first use);
/// a server that fails twice in a row is skipped for `retryIntervalSeconds` (libmemcached's own
/// dead-server handling), so a dead cache costs a request at most two short timeouts. Keys are spread over several servers by
/// consistent hashing (ketama), so adding a server moves only a share of the keys.
public final class MemcachedClient {
    public struct Configuration: Sendable {
        /// Comma-separated servers: `host:port` over TCP, or the path of a unix socket (starting
        /// with `/`) for a memcached on the same host (`memcached -s PATH`), which saves the TCP
        /// stack's work on every request.
        public var servers: String
        public var timeoutMilliseconds: Int
        public var retryIntervalSeconds: Int

        public init(servers: String, timeoutMilliseconds: Int = 20, retryIntervalSeconds: Int = 1) {
            self.servers = servers
            self.timeoutMilliseconds = timeoutMilliseconds
            self.retryIntervalSeconds = retryIntervalSeconds
        }
    }

    private let handle: UnsafeMutablePointer<memcached_st>
    /// The result every multi-get fills, one value at a time: owned by us (so libmemcached only
    /// resets it) and reused, so its value buffer is allocated once, not once per value.
    private let result: UnsafeMutablePointer<memcached_result_st>

    public init(configuration: Configuration) throws(MemcachedError) {
        guard let handle = memcached_create(nil) else { throw .unavailable(message: "out of memory") }
        self.handle = handle
        result = .allocate(capacity: 1)
        memcached_result_create(handle, result)
        let entries = configuration.servers.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        guard !entries.isEmpty else { throw .invalidServerList(configuration.servers) }
        for entry in entries {
            let added = entry.hasPrefix("/")
                ? memcached_server_add_unix_socket(handle, entry)
                : Self.addTCPServer(entry, to: handle)
            guard added == MEMCACHED_SUCCESS else { throw .invalidServerList(configuration.servers) }
        }
        let timeoutMs = UInt64(max(1, configuration.timeoutMilliseconds))
        set(MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 0)
        set(MEMCACHED_BEHAVIOR_TCP_NODELAY, 1)
        set(MEMCACHED_BEHAVIOR_NO_BLOCK, 1)
        set(MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, timeoutMs)
        set(MEMCACHED_BEHAVIOR_POLL_TIMEOUT, timeoutMs)
        set(MEMCACHED_BEHAVIOR_SND_TIMEOUT, timeoutMs * 1000)
        set(MEMCACHED_BEHAVIOR_RCV_TIMEOUT, timeoutMs * 1000)
        // Two failures in a row mark a server dead: the first may be a connection the server
        // closed while idle (a restarted memcached), which `retryingOnce` replaces at once.
        set(MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 2)
        set(MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, UInt64(max(1, configuration.retryIntervalSeconds)))
        set(MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, UInt64(max(1, configuration.retryIntervalSeconds)))
        memcached_behavior_set_distribution(handle, MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA)
    }

    deinit {
        memcached_result_free(result)
        result.deallocate()
        memcached_free(handle)
    }

    /// `host:port` (or `host`, port 11211) through libmemcached's own parser.
    private static func addTCPServer(_ entry: String, to handle: UnsafeMutablePointer<memcached_st>) -> memcached_return_t {
        guard let list = memcached_servers_parse(entry) else { return MEMCACHED_FAILURE }
        defer { memcached_server_list_free(list) }
        return memcached_server_push(handle, list)
    }

    /// How many servers the client spreads keys over.
    public var serverCount: Int { Int(memcached_server_count(handle)) }

    /// One key per server, in the order of the server list: `prefix` followed by the smallest
    /// number whose key the consistent hashing places on that server. Every client configured
    /// with the same servers derives the same keys, so a value can be kept on each server (a
    /// copy that survives the loss of any other). Throws `invalidKey` when no number below
    /// 100,000 lands on some server (a server list far larger than any real one).
    public func keysOnEachServer(prefix: String) throws(MemcachedError) -> [String] {
        var keys = [String?](repeating: nil, count: serverCount)
        var missing = keys.count
        var number = 0
        while missing > 0 {
            guard number < 100_000 else { throw .invalidKey(prefix) }
            let key = prefix + String(number)
            try Self.validate(key)
            let server = Int(key.withCString { memcached_generate_hash(handle, $0, key.utf8.count) })
            if server < keys.count, keys[server] == nil {
                keys[server] = key
                missing -= 1
            }
            number += 1
        }
        return keys.map { $0! }
    }

    /// The value stored under `key`, or `nil` when there is none.
    public func get(_ key: String) throws(MemcachedError) -> [UInt8]? {
        try Self.validate(key)
        return try retryingOnce { () throws(MemcachedError) in try getOnce(key) }
    }

    private func getOnce(_ key: String) throws(MemcachedError) -> [UInt8]? {
        var length = 0
        var flags: UInt32 = 0
        var status = MEMCACHED_SUCCESS
        let value = key.withCString { memcached_get(handle, $0, key.utf8.count, &length, &flags, &status) }
        defer { free(value) }
        switch status {
        case MEMCACHED_SUCCESS:
            guard let value else { return [] }
            return value.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            }
        case MEMCACHED_NOTFOUND:
            return nil
        default:
            throw .unavailable(message: message(status))
        }
    }

    /// The values of `keys` fetched in one round trip per server (`memcached_mget`), in the
    /// order of `keys`; `nil` where a key has no value.
    public func get(many keys: [String]) throws(MemcachedError) -> [[UInt8]?] {
        for key in keys { try Self.validate(key) }
        return try retryingOnce { () throws(MemcachedError) in try getOnce(many: keys) }
    }

    private func getOnce(many keys: [String]) throws(MemcachedError) -> [[UInt8]?] {
        // All keys in one buffer (no NUL needed: libmemcached takes lengths).
        var buffer: [UInt8] = []
        buffer.reserveCapacity(keys.count * 64)
        var offsets: [Int] = []
        var lengths: [Int] = []
        for key in keys {
            offsets.append(buffer.count)
            lengths.append(key.utf8.count)
            buffer.append(contentsOf: key.utf8)
        }
        var values = [[UInt8]?](repeating: nil, count: keys.count)
        let status = buffer.withUnsafeBytes { raw -> memcached_return_t in
            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            let sent = memcached_mget(handle, pointers, &lengths, keys.count)
            guard sent == MEMCACHED_SUCCESS else { return sent }
            var fetchStatus = MEMCACHED_SUCCESS
            // Fills `result` with one value after another; NULL after the last.
            while memcached_fetch_result(handle, result, &fetchStatus) != nil {
                let keyLength = memcached_result_key_length(result)
                guard let keyBytes = memcached_result_key_value(result) else { continue }
                var index = 0
                while index < keys.count, lengths[index] != keyLength || memcmp(base + offsets[index], keyBytes, keyLength) != 0 {
                    index += 1
                }
                guard index < keys.count else { continue }
                values[index] = Array(UnsafeRawBufferPointer(start: memcached_result_value(result), count: memcached_result_length(result)))
            }
            return fetchStatus == MEMCACHED_END || fetchStatus == MEMCACHED_NOTFOUND ? MEMCACHED_SUCCESS : fetchStatus
        }
        guard status == MEMCACHED_SUCCESS else { throw .unavailable(message: message(status)) }
        return values
    }

    /// Stores `value` under `key` only if the key holds nothing (memcached `add`): true when it
    /// was stored, false when another value was there.
    public func add(_ key: String, value: [UInt8], ttlSeconds: Int) throws(MemcachedError) -> Bool {
        try Self.validate(key)
        return try retryingOnce { () throws(MemcachedError) in try addOnce(key, value: value, ttlSeconds: ttlSeconds) }
    }

    private func addOnce(_ key: String, value: [UInt8], ttlSeconds: Int) throws(MemcachedError) -> Bool {
        let status = key.withCString { cKey in
            value.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    memcached_add(handle, cKey, key.utf8.count, $0.baseAddress, $0.count, time_t(ttlSeconds), 0)
                }
            }
        }
        switch status {
        case MEMCACHED_SUCCESS: return true
        case MEMCACHED_NOTSTORED, MEMCACHED_DATA_EXISTS: return false
        default: throw .unavailable(message: message(status))
        }
    }

    /// Stores `value` under `key` for `ttlSeconds` (memcached's limit: 30 days as a relative time).
    public func set(_ key: String, value: [UInt8], ttlSeconds: Int) throws(MemcachedError) {
        try Self.validate(key)
        try retryingOnce { () throws(MemcachedError) in try setOnce(key, value: value, ttlSeconds: ttlSeconds) }
    }

    private func setOnce(_ key: String, value: [UInt8], ttlSeconds: Int) throws(MemcachedError) {
        let status = key.withCString { cKey in
            value.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    memcached_set(handle, cKey, key.utf8.count, $0.baseAddress, $0.count, time_t(ttlSeconds), 0)
                }
            }
        }
        guard status == MEMCACHED_SUCCESS else { throw .unavailable(message: message(status)) }
    }

    /// Removes `key`; a key that is not there is not an error.
    public func delete(_ key: String) throws(MemcachedError) {
        try Self.validate(key)
        try retryingOnce { () throws(MemcachedError) in try deleteOnce(key) }
    }

    private func deleteOnce(_ key: String) throws(MemcachedError) {
        let status = key.withCString { memcached_delete(handle, $0, key.utf8.count, 0) }
        guard status == MEMCACHED_SUCCESS || status == MEMCACHED_NOTFOUND else {
            throw .unavailable(message: message(status))
        }
    }

    /// Runs `operation` again once after a failure: a connection that memcached closed while it
    /// sat idle (a restart) fails its first use, and libmemcached reconnects on the second.
    /// A server that is really gone fails twice and is then skipped for `retryIntervalSeconds`.
    private func retryingOnce<T>(_ operation: () throws(MemcachedError) -> T) throws(MemcachedError) -> T {
        do {
            return try operation()
        } catch {
            return try operation()
        }
    }

    static func validate(_ key: String) throws(MemcachedError) {
        let bytes = key.utf8
        let printable = { (byte: UInt8) in byte > 0x20 && byte != 0x7f }
        // The contiguous UTF-8 when the string has it: a plain loop, not the view's iterator.
        let valid = bytes.withContiguousStorageIfAvailable { $0.allSatisfy(printable) } ?? bytes.allSatisfy(printable)
        guard !bytes.isEmpty, bytes.count <= 250, valid else {
            throw .invalidKey(key)
        }
    }

    private func set(_ behavior: memcached_behavior_t, _ value: UInt64) {
        memcached_behavior_set(handle, behavior, value)
    }

    private func message(_ status: memcached_return_t) -> String {
        String(cString: memcached_strerror(handle, status))
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
