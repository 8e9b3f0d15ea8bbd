import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// php-fpm's scoreboard: one block of shared memory the supervisor creates and every worker maps,
/// so any worker can report on the whole pool (metrics, status page) without asking anyone.
///
/// The block is an unnamed POSIX shared-memory object (`shm_open` then `shm_unlink`) that workers
/// inherit as fd `ScoreboardLayout.workerDescriptor`. It holds 64-bit words, each read and written
/// only atomically:
///
/// - the header: geometry, the pool's start time and the supervisor's worker counters
///   (`PoolCounter`);
/// - `supervisorWords` for the application's supervisor-side counters (e.g. invalidations);
/// - the retired totals: `counterWords` words into which an entry's counters are added when its
///   worker is reaped, so a sum over the retired totals and the live entries never goes down;
/// - `entries` entries, one per worker process alive at once (a reload overlaps an old and a new
///   worker, so twice the workers): `EntryField` words, then `counterWords` counters (summed on
///   retirement), then `liveWords` (what the worker is doing now; cleared on retirement).
///
/// Each entry has one writer process (its worker), the header and retired totals only the
/// supervisor; readers see each word whole but words only eventually consistent with each other.
public final class Scoreboard: @unchecked Sendable {
    // @unchecked: the mapping is never unmapped while the object lives, and every access to it is
    // an `Atomic` operation, so sharing it between threads (and processes) is safe.
    public let layout: ScoreboardLayout
    /// The shared-memory object; workers receive it as `ScoreboardLayout.workerDescriptor`.
    public let descriptor: Int32
    private let words: UnsafeMutablePointer<Atomic<UInt64>>

    static let magic: UInt64 = 0x5441_5343_4f52_4531  // "TASCORE1"
    static let headerWords = 16
    static let retireSequenceWord = 6

    /// The header's supervisor-written counters of the pool itself.
    public enum PoolCounter: Int, CaseIterable, Sendable {
        case workerStarts = 0, exitsClean, exitsError, exitsSignal, exitsStatusLost, reloads
        static let base = 8
    }

    /// The pool's fields at the start of each entry.
    public enum EntryField: Int, CaseIterable, Sendable {
        /// 0 while the entry is free.
        case pid = 0
        case slot
        /// Seconds since the epoch.
        case startedAt
        static let count = 4
    }

    /// Creates the block for a new pool (the supervisor).
    public static func create(layout: ScoreboardLayout, startedAt: Int) throws(ScoreboardError) -> Scoreboard {
        let name = "/trading-api-scoreboard-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let descriptor = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .cannotCreate(errno: errno) }
        shm_unlink(name)
        guard ftruncate(descriptor, off_t(layout.totalWords * 8)) == 0 else {
            let code = errno
            close(descriptor)
            throw .cannotCreate(errno: code)
        }
        let scoreboard = try Scoreboard(descriptor: descriptor, layout: layout)
        let header = [magic, UInt64(layout.entries), UInt64(layout.counterWords), UInt64(layout.liveWords),
                      UInt64(layout.supervisorWords), UInt64(startedAt)]
        for (index, value) in header.enumerated() {
            scoreboard.words[index].store(value, ordering: .relaxed)
        }
        return scoreboard
    }

    /// Maps the block a supervisor created (a worker, from its inherited descriptor).
    public static func attach(descriptor: Int32) throws(ScoreboardError) -> Scoreboard {
        var header = [UInt64](repeating: 0, count: 6)
        let read = header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard read == 48, header[0] == magic else { throw .notAScoreboard(descriptor: descriptor) }
        let layout = ScoreboardLayout(entries: Int(header[1]), counterWords: Int(header[2]), liveWords: Int(header[3]),
                                      supervisorWords: Int(header[4]))
        return try Scoreboard(descriptor: descriptor, layout: layout)
    }

    private init(descriptor: Int32, layout: ScoreboardLayout) throws(ScoreboardError) {
        guard let base = mmap(nil, layout.totalWords * 8, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0),
              base != MAP_FAILED else {
            throw .cannotMap(errno: errno)
        }
        self.layout = layout
        self.descriptor = descriptor
        words = base.bindMemory(to: Atomic<UInt64>.self, capacity: layout.totalWords)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(words), layout.totalWords * 8)
        close(descriptor)
    }

    /// When the pool started, in seconds since the epoch.
    public var startedAt: Int { Int(words[5].load(ordering: .relaxed)) }

    public func poolCounter(_ counter: PoolCounter) -> UInt64 {
        words[PoolCounter.base + counter.rawValue].load(ordering: .relaxed)
    }

    func count(_ counter: PoolCounter) {
        words[PoolCounter.base + counter.rawValue].add(1, ordering: .relaxed)
    }

    /// The application's supervisor-side counters.
    public var supervisorWords: ScoreboardWords {
        ScoreboardWords(words + Self.headerWords, count: layout.supervisorWords, owner: self)
    }

    /// The counters of every worker reaped so far, added up.
    public var retiredCounters: ScoreboardWords {
        ScoreboardWords(words + Self.headerWords + layout.supervisorWords, count: layout.counterWords, owner: self)
    }

    /// Entry `index` (0..<entries).
    public func entry(_ index: Int) -> ScoreboardEntry {
        precondition((0..<layout.entries).contains(index), "no scoreboard entry \(index)")
        let start = Self.headerWords + layout.supervisorWords + layout.counterWords + index * layout.entryWords
        return ScoreboardEntry(words: words + start, layout: layout, owner: self)
    }

    /// A new worker took entry `index`.
    func occupy(_ index: Int, pid: pid_t, slot: Int, startedAt: Int) {
        let entry = entry(index)
        entry.fields.store(EntryField.slot.rawValue, UInt64(slot))
        entry.fields.store(EntryField.startedAt.rawValue, UInt64(startedAt))
        entry.fields.store(EntryField.pid.rawValue, UInt64(pid))
        count(.workerStarts)
    }

    /// The worker of entry `index` was reaped: its counters join the retired totals, its entry is
    /// cleared for the next worker. Readers that overlap a retirement read again
    /// (`consistentRead`), so a total never counts a worker twice or not at all.
    func retire(_ index: Int) {
        let entry = entry(index)
        let retired = retiredCounters
        words[Self.retireSequenceWord].add(1, ordering: .sequentiallyConsistent)  // odd: moving
        for word in 0..<layout.counterWords {
            retired.add(word, entry.counters.exchange(word, 0))
        }
        for word in 0..<layout.liveWords { entry.live.store(word, 0) }
        for word in 0..<EntryField.count { entry.fields.store(word, 0) }
        words[Self.retireSequenceWord].add(1, ordering: .sequentiallyConsistent)  // even: settled
    }

    /// Runs `read` until no worker was retired while it ran (a seqlock), so totals over the
    /// retired counters and the live entries are exact. `read` must only read.
    public func consistentRead<Result>(_ read: () -> Result) -> Result {
        while true {
            let before = words[Self.retireSequenceWord].load(ordering: .sequentiallyConsistent)
            if before & 1 == 0 {
                let result = read()
                atomicMemoryFence(ordering: .acquiring)
                if words[Self.retireSequenceWord].load(ordering: .sequentiallyConsistent) == before { return result }
            }
            sched_yield()
        }
    }
}

/// The supervisor's record of which entry each live worker writes to.
struct ScoreboardSeats {
    let scoreboard: Scoreboard
    private var entryOf: [pid_t: Int] = [:]

    init(_ scoreboard: Scoreboard) {
        self.scoreboard = scoreboard
    }

    /// A free entry for the next worker, or `nil` when all are taken (the worker runs unrecorded).
    func free() -> Int? {
        let taken = Set(entryOf.values)
        return (0..<scoreboard.layout.entries).first { !taken.contains($0) }
    }

    mutating func occupy(_ entry: Int, pid: pid_t, slot: Int, startedAt: Int) {
        entryOf[pid] = entry
        scoreboard.occupy(entry, pid: pid, slot: slot, startedAt: startedAt)
    }

    /// `pid` was reaped: retires its entry and counts how it ended.
    mutating func reaped(_ pid: pid_t, exit: WorkerExit) {
        if let entry = entryOf.removeValue(forKey: pid) { scoreboard.retire(entry) }
        switch exit {
        case .exited(code: 0): scoreboard.count(.exitsClean)
        case .exited: scoreboard.count(.exitsError)
        case .killed: scoreboard.count(.exitsSignal)
        case .statusLost: scoreboard.count(.exitsStatusLost)
        }
    }
}

/// The shape of a scoreboard, in 64-bit words.
public struct ScoreboardLayout: Sendable, Equatable {
    /// Worker processes alive at once.
    public var entries: Int
    /// Counters per entry, summed into the retired totals when its worker ends.
    public var counterWords: Int
    /// Per entry: what its worker is doing now.
    public var liveWords: Int
    public var supervisorWords: Int

    /// Where a worker finds the scoreboard: the first descriptor after stdin, stdout and stderr.
    public static let workerDescriptor: Int32 = 3

    public init(entries: Int, counterWords: Int, liveWords: Int, supervisorWords: Int) {
        self.entries = entries
        self.counterWords = counterWords
        self.liveWords = liveWords
        self.supervisorWords = supervisorWords
    }

    var entryWords: Int { Scoreboard.EntryField.count + counterWords + liveWords }
    var totalWords: Int { Scoreboard.headerWords + supervisorWords + counterWords + entries * entryWords }
}

/// One worker's entry.
public struct ScoreboardEntry: Sendable {
    public let fields: ScoreboardWords
    public let counters: ScoreboardWords
    public let live: ScoreboardWords

    init(words: UnsafeMutablePointer<Atomic<UInt64>>, layout: ScoreboardLayout, owner: Scoreboard) {
        let fieldCount = Scoreboard.EntryField.count
        fields = ScoreboardWords(words, count: fieldCount, owner: owner)
        counters = ScoreboardWords(words + fieldCount, count: layout.counterWords, owner: owner)
        live = ScoreboardWords(words + fieldCount + layout.counterWords, count: layout.liveWords, owner: owner)
    }

    /// The worker's pid; `nil` while the entry is free.
    public var pid: pid_t? {
        let pid = fields.load(Scoreboard.EntryField.pid.rawValue)
        return pid == 0 ? nil : pid_t(truncatingIfNeeded: pid)
    }

    public var slot: Int { Int(fields.load(Scoreboard.EntryField.slot.rawValue)) }
    public var startedAt: Int { Int(fields.load(Scoreboard.EntryField.startedAt.rawValue)) }
}

/// A run of shared 64-bit words; relaxed atomic operations, bounds checked.
public struct ScoreboardWords: @unchecked Sendable {
    // @unchecked: a window on `Scoreboard`'s mapping, which it keeps alive (`owner`); atomic
    // access only.
    private let owner: Scoreboard
    private let base: UnsafeMutablePointer<Atomic<UInt64>>
    public let count: Int

    init(_ base: UnsafeMutablePointer<Atomic<UInt64>>, count: Int, owner: Scoreboard) {
        self.owner = owner
        self.base = base
        self.count = count
    }

    /// An atomic read-modify-write (a locked instruction): for words several threads add to.
    @inline(__always)
    public func add(_ index: Int, _ amount: UInt64) {
        precondition(index >= 0 && index < count, "scoreboard word \(index) out of range")
        base[index].add(amount, ordering: .relaxed)
    }

    /// Adds with a plain load and store, for a word only one thread ever writes (a request
    /// loop's own counters): no locked instruction, no cache line shared with another writer.
    @inline(__always)
    public func increment(_ index: Int, by amount: UInt64 = 1) {
        precondition(index >= 0 && index < count, "scoreboard word \(index) out of range")
        base[index].store(base[index].load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// `count` words from `offset` of these.
    public func slice(_ offset: Int, count: Int) -> ScoreboardWords {
        precondition(offset >= 0 && count >= 0 && offset + count <= self.count, "scoreboard slice out of range")
        return ScoreboardWords(base + offset, count: count, owner: owner)
    }

    @inline(__always)
    public func load(_ index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "scoreboard word \(index) out of range")
        return base[index].load(ordering: .relaxed)
    }

    /// Release ordering: a reader that acquires this word sees the stores made before it.
    @inline(__always)
    public func store(_ index: Int, _ value: UInt64) {
        precondition(index >= 0 && index < count, "scoreboard word \(index) out of range")
        base[index].store(value, ordering: .releasing)
    }

    /// Stores `text` NUL-terminated into the words from `index` on, at most `wordCount` words
    /// (cut to fit, and then without a NUL), each word the next 8 bytes in native byte order,
    /// release ordering like `store`. Words after the one holding the NUL keep what they held:
    /// a reader stops at the NUL.
    public func storeText(_ index: Int, _ text: UnsafeRawBufferPointer, wordCount: Int) {
        precondition(index >= 0 && wordCount >= 0 && index + wordCount <= count, "scoreboard words out of range")
        let length = min(text.count, wordCount * 8)
        for word in 0..<min(wordCount, length / 8 + 1) {
            let offset = word * 8
            var value: UInt64 = 0
            if offset + 8 <= length {
                value = text.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            } else {
                withUnsafeMutableBytes(of: &value) { bytes in
                    for byte in 0..<(length - offset) { bytes[byte] = text[offset + byte] }
                }
            }
            base[index + word].store(value, ordering: .releasing)
        }
    }

    @inline(__always)
    public func loadAcquiring(_ index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "scoreboard word \(index) out of range")
        return base[index].load(ordering: .acquiring)
    }

    func exchange(_ index: Int, _ value: UInt64) -> UInt64 {
        precondition(index >= 0 && index < count, "scoreboard word \(index) out of range")
        return base[index].exchange(value, ordering: .relaxed)
    }
}

/// Why a scoreboard could not be set up.
public enum ScoreboardError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotCreate(errno: Int32)
    case cannotMap(errno: Int32)
    case notAScoreboard(descriptor: Int32)

    public var description: String {
        switch self {
        case .cannotCreate(let code): "cannot create the scoreboard's shared memory: \(errorString(code))"
        case .cannotMap(let code): "cannot map the scoreboard: \(errorString(code))"
        case .notAScoreboard(let descriptor): "descriptor \(descriptor) is not a trading-api scoreboard"
        }
    }
}
