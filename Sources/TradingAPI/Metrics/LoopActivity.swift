import WorkerPool

/// What one request loop is doing now, in its scoreboard entry's live words, for the status page:
/// the request's start, method, path and id, or idle.
///
/// One writer (the loop) and any number of readers in other processes: a seqlock. The writer
/// makes the sequence odd, stores the fields, makes it even; a reader copies the fields and
/// keeps the copy only if the sequence was the same even number before and after.
struct LoopActivity {
    static let methodBytes = 8
    static let requestIDBytes = 32
    static let pathBytes = 96
    static let words = 3 + (methodBytes + requestIDBytes + pathBytes) / 8

    private static let sequence = 0
    private static let startedAt = 1
    private static let phase = 2
    private static let text = 3

    /// The request in hand, as read by the status page.
    struct Request: Equatable {
        var method: String
        var path: String
        var requestID: String
        /// Microseconds since the epoch.
        var startedAt: Int64
        var phase: RequestPhase
    }

    private let words: ScoreboardWords
    private let base: Int

    /// Loop `loop`'s activity in `live` (an entry's live words).
    init(live: ScoreboardWords, loop: Int) {
        words = live
        base = loop * Self.words
    }

    /// The loop started a request (method, path and id are cut to their fields' sizes).
    func begin(method: String, path: String, requestID: String, startedAt: Int64) {
        let sequence = words.load(base + Self.sequence)
        words.store(base + Self.sequence, sequence | 1)
        words.store(base + Self.startedAt, UInt64(bitPattern: startedAt))
        words.store(base + Self.phase, UInt64(RequestPhase.route.rawValue))
        store(method, atWord: Self.text, bytes: Self.methodBytes)
        store(requestID, atWord: Self.text + Self.methodBytes / 8, bytes: Self.requestIDBytes)
        store(path, atWord: Self.text + (Self.methodBytes + Self.requestIDBytes) / 8, bytes: Self.pathBytes)
        words.store(base + Self.sequence, (sequence | 1) &+ 1)
    }

    /// `text`'s first `bytes` bytes, NUL-terminated when shorter, as words from `word` (native
    /// byte order, as `read` loads them; `read` stops at the NUL).
    private func store(_ text: String, atWord word: Int, bytes: Int) {
        var text = text
        text.withUTF8 { words.storeText(base + word, UnsafeRawBufferPointer($0), wordCount: bytes / 8) }
    }

    /// The request moved on to `phase` (a single word: no sequence needed).
    func enter(_ phase: RequestPhase) {
        words.store(base + Self.phase, UInt64(phase.rawValue))
    }

    /// The loop finished its request and waits for the next.
    func end() {
        let sequence = words.load(base + Self.sequence)
        words.store(base + Self.sequence, sequence | 1)
        words.store(base + Self.startedAt, 0)
        words.store(base + Self.sequence, (sequence | 1) &+ 1)
    }

    /// The request in hand; `nil` while idle.
    func read() -> Request? {
        for _ in 0..<100 {
            let before = words.loadAcquiring(base + Self.sequence)
            guard before & 1 == 0 else { continue }
            let startedAt = Int64(bitPattern: words.load(base + Self.startedAt))
            let phase = RequestPhase(rawValue: Int(words.load(base + Self.phase))) ?? .route
            var bytes = [UInt8](repeating: 0, count: (Self.words - Self.text) * 8)
            bytes.withUnsafeMutableBytes { raw in
                for word in 0..<(Self.words - Self.text) {
                    raw.storeBytes(of: words.load(base + Self.text + word), toByteOffset: word * 8, as: UInt64.self)
                }
            }
            guard words.loadAcquiring(base + Self.sequence) == before else { continue }
            guard startedAt != 0 else { return nil }
            return Request(method: Self.text(bytes[0..<Self.methodBytes]),
                           path: Self.text(bytes[(Self.methodBytes + Self.requestIDBytes)...]),
                           requestID: Self.text(bytes[Self.methodBytes..<(Self.methodBytes + Self.requestIDBytes)]),
                           startedAt: startedAt, phase: phase)
        }
        return nil  // written to without pause: report idle rather than spin
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Where a request is on the data path: the status page's `phase`, the slow log's timings.
enum RequestPhase: Int, Sendable, CaseIterable {
    case route = 0, auth, cache, query, render

    var label: String { ["route", "auth", "cache", "query", "render"][rawValue] }
}
