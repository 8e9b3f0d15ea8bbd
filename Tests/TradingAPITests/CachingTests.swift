@testable import TradingAPI
import Memcached
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
        #expect(CacheKeys.view("logs", user: user, parameters: "h1:l100") == "ta3:logs:11111111-2222-3333-4444-55555555aaaa:h1:l100")
        #expect(CacheKeys.view("status", user: user) == "ta3:status:11111111-2222-3333-4444-55555555aaaa")
        #expect(CacheKeys.generation(of: user) == "ta3:gen:11111111-2222-3333-4444-55555555aaaa")
        let one = try MemcachedClient(configuration: .init(servers: "10.0.0.1:11211"))
        #expect(try CacheKeys.epochCopies(in: one) == ["ta3:epoch:0"])
        let two = try CacheKeys.epochCopies(in: MemcachedClient(configuration: .init(servers: "10.0.0.1:11211,10.0.0.2:11211")))
        #expect(two.count == 2 && Set(two).count == 2 && two.allSatisfy { $0.hasPrefix("ta3:epoch:") })
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

@Suite struct EpochReadingTests {
    let tag = Array("00000000000000aa".utf8)
    let other = Array("00000000000000bb".utf8)

    @Test func copiesThatAgreeGiveTheirTagAndUnreadableOnesAreLeftOut() {
        #expect(EpochReading(copies: [tag, tag]) == .current(StoredTag(tag)!))
        #expect(EpochReading(copies: [nil, tag]) == .current(StoredTag(tag)!))
        let stamped = Array("00000000000000aa 0000000001a2b3c4".utf8)
        #expect(EpochReading(copies: [stamped, stamped]) == .current(StoredTag(stamped)!))
        #expect(EpochReading(copies: [stamped, tag]) == .unsettled)
    }

    @Test func storedTagsCarryAWALPositionOrNone() throws {
        let plain = try #require(StoredTag(tag))
        #expect(plain.tag == CacheGeneration(tag) && plain.walPosition == nil && plain.bytes == tag)
        let stamped = try #require(StoredTag(Array("00000000000000aa 0000000001a2b3c4".utf8)))
        #expect(stamped.tag == CacheGeneration(tag) && stamped.walPosition == 0x1a2b3c4)
        #expect(stamped.bytes == Array("00000000000000aa 0000000001a2b3c4".utf8))
        let random = StoredTag(tag: .random(), walPosition: .max)
        #expect(StoredTag(random.bytes) == random)
        for bad in ["00000000000000aa ", "00000000000000aa-0000000001a2b3c4", "00000000000000aa 0000000001a2b3cz", "paused"] {
            #expect(StoredTag(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func aPausedCopyPausesEverything() {
        #expect(EpochReading(copies: [tag, CacheKeys.pausedEpoch]) == .paused)
        #expect(EpochReading(copies: [CacheKeys.pausedEpoch, other]) == .paused)
    }

    @Test func disagreementNothingOrGarbageIsUnsettled() {
        #expect(EpochReading(copies: [tag, other]) == .unsettled)  // a server back from a partition
        #expect(EpochReading(copies: [nil, nil]) == .unsettled)
        #expect(EpochReading(copies: [[UInt8]?]()) == .unsettled)
        #expect(EpochReading(copies: [Array("zz".utf8)]) == .unsettled)
    }
}

@Suite struct ChangeListenerStateMachineTests {
    typealias Machine = ChangeListenerStateMachine
    static let tag = Array("00000000000000aa".utf8)
    static let other = Array("00000000000000bb".utf8)
    static let paused = CacheKeys.pausedEpoch

    @Test func pausesThenConnectsThenReplacesTheEpochThenWaits() {
        var machine = Machine()
        #expect(machine.nextAction(now: 0) == .writeEpoch(.pause))
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        #expect(machine.nextAction(now: 0) == .connect)
        machine.connected()
        #expect(machine.nextAction(now: 1) == .writeEpoch(.replace))
        machine.epochWritten(Self.tag, failedCopies: [], now: 1)
        #expect(machine.nextAction(now: 2) == .waitForNotifications(milliseconds: Machine.epochCheckMilliseconds - 1))
        #expect(machine.nextAction(now: 501) == .checkEpoch)
        machine.epochRead([Self.tag, Self.tag], now: 501)
        #expect(machine.nextAction(now: 502) == .waitForNotifications(milliseconds: Machine.epochCheckMilliseconds - 1))
    }

    /// Runs `machine` from `now` until it asks to connect, answering its checks with `copies`;
    /// the time it took.
    static func untilConnect(_ machine: inout Machine, from now: UInt64, copies: [[UInt8]?]) -> UInt64 {
        var at = now
        while true {
            switch machine.nextAction(now: at) {
            case .connect: return at - now
            case .checkEpoch: machine.epochRead(copies, now: at)
            case .sleep(let milliseconds): at += UInt64(milliseconds)
            case let other: Issue.record("unexpected \(other)"); return at - now
            }
        }
    }

    @Test func backsOffDoublingToTheMaximumWhileCheckingThePause() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        var now: UInt64 = 0
        var waits: [UInt64] = []
        for _ in 0..<8 {
            let waited = Self.untilConnect(&machine, from: now, copies: [Self.paused])
            now += waited
            waits.append(waited)
            machine.disconnected(now: now)
        }
        #expect(waits == [0, 100, 200, 400, 800, 1600, 2000, 2000])
        machine.connected()
        machine.epochWritten(Self.tag, failedCopies: [], now: now)
        machine.disconnected(now: now)
        #expect(machine.nextAction(now: now) == .writeEpoch(.pause))
        machine.epochWritten(Self.paused, failedCopies: [], now: now)
        #expect(machine.nextAction(now: now) == .sleep(milliseconds: 100))
    }

    @Test func aLostSessionPausesTheCacheAtOnceAndReplacesTheEpochOnReconnect() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        machine.connected()
        machine.epochWritten(Self.tag, failedCopies: [], now: 0)
        machine.disconnected(now: 1000)
        #expect(machine.epochWriteDue == .pause)
        #expect(machine.nextAction(now: 1000) == .writeEpoch(.pause))
        machine.epochWritten(Self.paused, failedCopies: [], now: 1000)
        #expect(machine.nextAction(now: 1100) == .connect)
        machine.connected()
        #expect(machine.nextAction(now: 1101) == .writeEpoch(.replace))
    }

    @Test func aSessionLostBeforeTheEpochWasReplacedStillPauses() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        machine.connected()
        machine.disconnected(now: 10)  // .replace was due and never written
        #expect(machine.nextAction(now: 10) == .writeEpoch(.pause))
        machine.connected()
        machine.epochWritten(Self.tag, failedCopies: [1], now: 20)
        machine.disconnected(now: 30)  // a copy still to be filled with a tag: pause instead
        #expect(machine.nextAction(now: 30) == .writeEpoch(.pause))
    }

    @Test func copiesAWriteMissedAreCaughtUpWithTheSameValue() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        machine.connected()
        #expect(machine.nextAction(now: 1) == .writeEpoch(.replace))
        machine.epochWritten(Self.tag, failedCopies: [0], now: 1)  // server 0 cut off
        #expect(machine.nextAction(now: 100) == .waitForNotifications(milliseconds: 101))
        #expect(machine.nextAction(now: 201) == .writeEpoch(.fill(value: Self.tag, copies: [0])))
        machine.epochWritten(Self.tag, failedCopies: [0], now: 201)  // still away
        #expect(machine.nextAction(now: 401) == .writeEpoch(.fill(value: Self.tag, copies: [0])))
        machine.epochWritten(Self.tag, failedCopies: [], now: 401)  // back, caught up
        #expect(machine.epochWriteDue == nil)
    }

    @Test func aFailedGenerationWriteMakesANewEpochDueAtOnce() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        machine.connected()
        machine.epochWritten(Self.tag, failedCopies: [1], now: 0)
        machine.generationWriteFailed()  // a new tag, not the one being filled in
        #expect(machine.nextAction(now: 1) == .writeEpoch(.replace))
    }

    @Test func nothingIsReplacedWhileNotListening() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        machine.everythingChanged()
        machine.generationWriteFailed()
        #expect(machine.epochWriteDue == nil)  // the reconnect replaces it anyway
        machine.connected()
        machine.epochWritten(Self.tag, failedCopies: [], now: 0)
        machine.everythingChanged()
        #expect(machine.nextAction(now: 1) == .writeEpoch(.replace))
    }

    @Test func theCheckRepairsWhatItReads() {
        typealias M = Machine
        // Agreed, every copy there: nothing, whoever wrote it.
        #expect(M.repair([Self.tag, Self.tag], isListening: true) == nil)
        #expect(M.repair([Self.other, Self.other], isListening: false) == nil)
        #expect(M.repair([Self.paused, Self.paused], isListening: false) == nil)
        // A copy lost (a server restarted empty, or unreachable): filled with the agreed value.
        #expect(M.repair([nil, Self.tag], isListening: true) == .fill(value: Self.tag, copies: [0]))
        #expect(M.repair([Self.paused, nil], isListening: false) == .fill(value: Self.paused, copies: [1]))
        // Disagreement, nothing at all, or garbage: a fresh value.
        #expect(M.repair([Self.tag, Self.other], isListening: true) == .replace)
        #expect(M.repair([Self.tag, Self.paused], isListening: false) == .pause)
        #expect(M.repair([nil, nil], isListening: true) == .replace)
        #expect(M.repair([Array("zz".utf8)], isListening: false) == .pause)
        // Paused by a listener that lost its session, while this one listens: resumed.
        #expect(M.repair([Self.paused, Self.paused], isListening: true) == .replace)
    }

    @Test func aCheckThatFindsCopiesMissingFillsThem() {
        var machine = Machine()
        machine.epochWritten(Self.paused, failedCopies: [], now: 0)
        machine.connected()
        machine.epochWritten(Self.tag, failedCopies: [], now: 0)
        #expect(machine.nextAction(now: 500) == .checkEpoch)
        machine.epochRead(nil, now: 500)  // memcached did not answer: try again next time
        #expect(machine.nextAction(now: 600) == .waitForNotifications(milliseconds: 400))
        #expect(machine.nextAction(now: 1000) == .checkEpoch)
        machine.epochRead([Self.tag, nil], now: 1000)
        #expect(machine.nextAction(now: 1000) == .writeEpoch(.fill(value: Self.tag, copies: [1])))
    }
}
