@testable import TradingAPI
import Testing

@Suite struct CachedViewTests {
    let epoch = CacheGeneration.random()
    let generation = CacheGeneration.random()

    @Test func encodesAndDecodesEveryField() {
        let body = Array(#"{"a":"x\ny"}"#.utf8) + [0, 255, 10]
        for changesAt in [nil, Timestamp(microseconds: 1_761_482_100_000_001)] {
            let entry = CachedView(epoch: epoch, generation: generation, changesAt: changesAt,
                                   etag: CachedView.etag(of: body), body: body)
            #expect(CachedView(decoding: entry.encoded) == entry)
        }
    }

    @Test func refusesWhatThisVersionDidNotWrite() {
        #expect(CachedView(decoding: Array(#"{"user_id":"x"}"#.utf8)) == nil)
        #expect(CachedView(decoding: Array("0123456789abcdef 0123456789abcdef - nope\n{}".utf8)) == nil)
        #expect(CachedView(decoding: Array("0123456789abcdef 0123456789abcdeg - \"0123456789abcdef0123456789abcdef\"\n{}".utf8)) == nil)
        #expect(CachedView(decoding: Array("0123456789abcdef 0123456789abcdef 12x \"0123456789abcdef0123456789abcdef\"\n{}".utf8)) == nil)
        #expect(CachedView(decoding: []) == nil)
    }

    @Test func etagIsStrongQuotedAndFollowsTheBody() {
        let tag = CachedView.etag(of: Array("{}".utf8))
        #expect(tag.utf8.count == 34 && tag.hasPrefix("\"") && tag.hasSuffix("\""))
        #expect(tag == "\"44136fa355b3678a1146ad16f7e8649e\"")  // SHA-256 of "{}", first 16 bytes
        #expect(CachedView.etag(of: Array("{} ".utf8)) != tag)
    }

    @Test func isCurrentUntilItsMoment() {
        let entry = CachedView(epoch: epoch, generation: generation, changesAt: Timestamp(microseconds: 100), etag: "", body: [])
        #expect(entry.isCurrent(at: Timestamp(microseconds: 99)))
        #expect(!entry.isCurrent(at: Timestamp(microseconds: 100)))
        var forever = entry
        forever.changesAt = nil
        #expect(forever.isCurrent(at: Timestamp(microseconds: .max)))
    }

    @Test func generationsAreSixteenHexDigits() {
        #expect(CacheGeneration(Array("0123456789abcdef".utf8))?.text == "0123456789abcdef")
        #expect(CacheGeneration(Array("0123456789abcde".utf8)) == nil)
        #expect(CacheGeneration(Array("0123456789abcdeg".utf8)) == nil)
        let tags = Set((0..<1000).map { _ in CacheGeneration.random() })
        #expect(tags.count == 1000 && tags.allSatisfy { $0.text.utf8.count == 16 })
    }

    @Test func keysNameViewUserAndParametersOnly() throws {
        let user = try #require(UserID("11111111-2222-3333-4444-55555555AAAA"))
        #expect(CacheKeys.view("logs", user: user, parameters: "h1:l100") == "ta2:logs:11111111-2222-3333-4444-55555555aaaa:h1:l100")
        #expect(CacheKeys.view("status", user: user) == "ta2:status:11111111-2222-3333-4444-55555555aaaa")
        #expect(CacheKeys.generation(of: user) == "ta2:gen:11111111-2222-3333-4444-55555555aaaa")
        #expect(CacheKeys.epoch == "ta2:epoch")
    }
}

@Suite struct ConditionalRequestTests {
    let tag = "\"44136fa355b3678a1146ad16f7e8649e\""

    @Test func ifNoneMatchUsesTheWeakComparison() {
        #expect(EntityTag.list(tag, matches: tag))
        #expect(EntityTag.list("W/" + tag, matches: tag))
        #expect(EntityTag.list("\"other\", \t\(tag) ", matches: tag))
        #expect(EntityTag.list("*", matches: tag))
        #expect(!EntityTag.list("\"other\"", matches: tag))
        #expect(!EntityTag.list("44136fa355b3678a1146ad16f7e8649e", matches: tag))  // unquoted
        #expect(!EntityTag.list("", matches: tag))
    }

    @Test func aMatchingTagIsNotModifiedWithoutABody() {
        let body = Array("{}".utf8)
        let fresh = TradingService.viewResponse(body, etag: tag, xCache: "HIT", ifNoneMatch: tag)
        #expect(fresh.status == 304 && fresh.body.isEmpty)
        #expect(fresh.headers.contains { $0 == ("ETag", tag) })
        let changed = TradingService.viewResponse(body, etag: tag, xCache: "MISS", ifNoneMatch: "\"old\"")
        #expect(changed.status == 200 && changed.body == body)
        #expect(changed.headers.contains { $0 == ("Cache-Control", "private, no-cache") })
        #expect(TradingService.viewResponse(body, etag: tag, xCache: "MISS", ifNoneMatch: nil).status == 200)
    }
}

@Suite struct ChangeListenerStateMachineTests {
    typealias Machine = ChangeListenerStateMachine

    @Test func pausesThenConnectsThenReplacesTheEpochThenWaits() {
        var machine = Machine()
        #expect(machine.nextAction(now: 0) == .pauseCache)
        machine.epochWritten()
        #expect(machine.nextAction(now: 0) == .connect)
        machine.connected()
        #expect(machine.nextAction(now: 1) == .replaceEpoch)
        machine.epochWritten()
        #expect(machine.nextAction(now: 2) == .waitForNotifications(milliseconds: Machine.idleWaitMilliseconds))
    }

    @Test func backsOffDoublingToTheMaximum() {
        var machine = Machine()
        machine.epochWritten()
        var now: UInt64 = 0
        var waits: [Int] = []
        for _ in 0..<8 {
            #expect(machine.nextAction(now: now) == .connect)
            machine.disconnected(now: now)
            guard case .sleep(let milliseconds) = machine.nextAction(now: now) else { Issue.record("expected a sleep"); return }
            waits.append(milliseconds)
            now += UInt64(milliseconds)
        }
        #expect(waits == [100, 200, 400, 800, 1600, 2000, 2000, 2000])
        machine.connected()
        machine.epochWritten()
        machine.disconnected(now: now)
        #expect(machine.nextAction(now: now) == .pauseCache)
        machine.epochWritten()
        #expect(machine.nextAction(now: now) == .sleep(milliseconds: 100))
    }

    @Test func aLostSessionPausesTheCacheAtOnceAndReplacesTheEpochOnReconnect() {
        var machine = Machine()
        machine.epochWritten()
        machine.connected()
        machine.epochWritten()
        machine.disconnected(now: 1000)
        #expect(machine.epochWriteDue == .pause)
        #expect(machine.nextAction(now: 1000) == .pauseCache)
        machine.epochWritten()
        #expect(machine.nextAction(now: 1100) == .connect)
        machine.connected()
        #expect(machine.nextAction(now: 1101) == .replaceEpoch)
    }

    @Test func aSessionLostBeforeTheEpochWasReplacedStillPauses() {
        var machine = Machine()
        machine.epochWritten()
        machine.connected()
        machine.disconnected(now: 10)  // .replace was due and never written
        #expect(machine.nextAction(now: 10) == .pauseCache)
    }

    @Test func failedEpochWritesAreRetriedWhileWaiting() {
        var machine = Machine()
        #expect(machine.nextAction(now: 0) == .pauseCache)
        machine.cacheWriteFailed(now: 0)
        #expect(machine.nextAction(now: 0) == .connect)  // connecting does not wait for memcached
        machine.connected()
        #expect(machine.nextAction(now: 1) == .replaceEpoch)
        machine.cacheWriteFailed(now: 5000)
        #expect(machine.nextAction(now: 5050) == .waitForNotifications(milliseconds: 150))
        #expect(machine.nextAction(now: 5200) == .replaceEpoch)
        machine.epochWritten()
        #expect(machine.epochWriteDue == nil)
    }

    @Test func aFailedGenerationWriteMakesTheEpochDue() {
        var machine = Machine()
        machine.epochWritten()
        machine.connected()
        machine.epochWritten()
        machine.cacheWriteFailed(now: 300)
        #expect(machine.epochWriteDue == .replace)
        #expect(machine.nextAction(now: 400) == .waitForNotifications(milliseconds: 100))
        #expect(machine.nextAction(now: 500) == .replaceEpoch)
    }

    @Test func everythingChangedIsDueAtOnceWhileListening() {
        var machine = Machine()
        machine.epochWritten()
        machine.everythingChanged()
        #expect(machine.epochWriteDue == nil)  // not listening: the reconnect replaces it anyway
        machine.connected()
        machine.epochWritten()
        machine.cacheWriteFailed(now: 0)
        machine.everythingChanged()
        #expect(machine.nextAction(now: 1) == .replaceEpoch)
    }
}
