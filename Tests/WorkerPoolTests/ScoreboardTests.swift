import Testing
import WorkerPool

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ScoreboardTests {
    let layout = ScoreboardLayout(entries: 4, counterWords: 3, liveWords: 2, supervisorWords: 2)

    @Test func aWorkerSeesWhatAnotherMappingWrote() throws {
        let scoreboard = try Scoreboard.create(layout: layout, startedAt: 1_796_000_000)
        // A worker maps the same object through its own descriptor (fd 3 after exec).
        let copy = dup(scoreboard.descriptor)
        let worker = try Scoreboard.attach(descriptor: copy)
        #expect(worker.layout == layout)
        #expect(worker.startedAt == 1_796_000_000)
        worker.entry(2).counters.add(1, 5)
        worker.supervisorWords.add(0, 7)
        #expect(scoreboard.entry(2).counters.load(1) == 5)
        #expect(scoreboard.supervisorWords.load(0) == 7)
    }

    @Test func refusesADescriptorThatIsNoScoreboard() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        #expect(throws: ScoreboardError.notAScoreboard(descriptor: ends[0])) { try Scoreboard.attach(descriptor: ends[0]) }
    }

    @Test func wordsAreBoundsChecked() throws {
        let scoreboard = try Scoreboard.create(layout: layout, startedAt: 0)
        #expect(scoreboard.entry(0).counters.count == 3)
        #expect(scoreboard.entry(0).live.count == 2)
        #expect(scoreboard.retiredCounters.count == 3)
        #expect(scoreboard.entry(3).pid == nil)
    }

    @Test func consistentReadReturnsWhatItRead() throws {
        let scoreboard = try Scoreboard.create(layout: layout, startedAt: 0)
        scoreboard.retiredCounters.add(0, 3)
        #expect(scoreboard.consistentRead { scoreboard.retiredCounters.load(0) } == 3)
    }
}
