import FoundationEssentials
import WorkerPool

/// One consistent reading of the scoreboard: the pool's totals and each live worker, for
/// `MetricsPage` and `PoolStatusPage`.
struct PoolReading {
    struct Worker {
        var pid: Int32
        var slot: Int
        /// Seconds since the epoch.
        var startedAt: Int
        var served: UInt64
        /// The requests its loops hold now.
        var requests: [LoopActivity.Request]
        /// Resident memory (`VmRSS` of /proc/<pid>/status); `nil` when it cannot be read.
        var residentBytes: Int?
    }

    /// Seconds since the epoch.
    var startedAt: Int
    /// Every loop's counters (`MetricsLayout`'s counter words) added up, the retired ones included.
    var totals: [UInt64]
    /// The supervisor's words (the change listener's counters).
    var supervisor: [UInt64]
    var pool: [Scoreboard.PoolCounter: UInt64]
    var workers: [Worker]
    var loopsPerWorker: Int
    var listenQueue: (depth: Int, limit: Int)?

    init(scoreboard: Scoreboard, listenQueue: (depth: Int, limit: Int)?) {
        let layout = scoreboard.layout
        loopsPerWorker = layout.liveWords / LoopActivity.words
        startedAt = scoreboard.startedAt
        self.listenQueue = listenQueue
        var pool: [Scoreboard.PoolCounter: UInt64] = [:]
        for counter in Scoreboard.PoolCounter.allCases { pool[counter] = scoreboard.poolCounter(counter) }
        self.pool = pool
        let supervisorWords = scoreboard.supervisorWords
        supervisor = (0..<supervisorWords.count).map { supervisorWords.load($0) }
        let loops = loopsPerWorker
        (totals, workers) = scoreboard.consistentRead {
            // Every loop's counters, of the live workers and the retired totals, added up.
            let perLoop = MetricsLayout.counterWords
            var totals = [UInt64](repeating: 0, count: perLoop)
            let retired = scoreboard.retiredCounters
            for word in 0..<layout.counterWords { totals[word % perLoop] += retired.load(word) }
            var workers: [Worker] = []
            for index in 0..<layout.entries {
                let entry = scoreboard.entry(index)
                guard let pid = entry.pid else { continue }
                var served: UInt64 = 0
                for word in 0..<layout.counterWords {
                    let value = entry.counters.load(word)
                    totals[word % perLoop] += value
                    if word % perLoop < MetricsLayout.requestDurations { served += value }
                }
                let requests = (0..<loops).compactMap { LoopActivity(live: entry.live, loop: $0).read() }
                workers.append(Worker(pid: pid, slot: entry.slot, startedAt: entry.startedAt, served: served,
                                      requests: requests, residentBytes: nil))
            }
            return (totals, workers)
        }
        for index in workers.indices {
            workers[index].residentBytes = Self.residentBytes(of: workers[index].pid)
        }
        workers.sort { ($0.slot, $0.startedAt) < ($1.slot, $1.startedAt) }
    }

    /// All requests answered: the `accepted conn` of php-fpm's status page.
    var acceptedRequests: UInt64 {
        totals[MetricsLayout.requests..<MetricsLayout.requestDurations].reduce(0, +)
    }

    private static func residentBytes(of pid: Int32) -> Int? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/status") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }
}
