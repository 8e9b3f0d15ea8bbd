@testable import TradingAPI
import Testing

@Suite struct ReplicaStateMachineTests {
    typealias Machine = ReplicaStateMachine

    func measured(replayed: UInt64 = 1_000, lag: Int64 = 0, at now: UInt64 = 0) -> Machine {
        var machine = Machine(maximumLagMilliseconds: 1_000)
        machine.measured(replayed: replayed, lagMilliseconds: lag, now: now)
        return machine
    }

    @Test func aViewWithoutAKnownPositionRunsOnThePrimary() {
        #expect(measured().decide(needing: nil, now: 1) == .primary(.positionUnknown))
    }

    @Test func measuresFirstThenUsesTheReplicaWhileItHasReplayedFarEnough() {
        let fresh = Machine(maximumLagMilliseconds: 1_000)
        #expect(fresh.decide(needing: 10, now: 0) == .measure)
        let machine = measured(replayed: 1_000)
        #expect(machine.decide(needing: 1_000, now: 1) == .replica)
        #expect(machine.decide(needing: 999, now: 60_000) == .replica)  // a replay position only grows
    }

    @Test func aViewNeedingMoreIsMeasuredAgainAtMostEvery5Milliseconds() {
        var machine = measured(replayed: 1_000, at: 100)
        #expect(machine.decide(needing: 2_000, now: 102) == .primary(.behind))
        #expect(machine.decide(needing: 2_000, now: 105) == .measure)
        machine.measured(replayed: 1_500, lagMilliseconds: 40, now: 105)
        #expect(machine.decide(needing: 2_000, now: 105) == .primary(.behind))
        machine.measured(replayed: 2_500, lagMilliseconds: 0, now: 110)
        #expect(machine.decide(needing: 2_000, now: 110) == .replica)
        machine.measured(replayed: 900, lagMilliseconds: 0, now: 120)  // an older reading never lowers it
        #expect(machine.replayed == 2_500)
    }

    @Test func aNewSessionIsMeasuredFromScratch() {
        // A restarted replica may open for reads at an older point than it had reached.
        var machine = measured(replayed: 5_000, at: 0)
        #expect(machine.decide(needing: 4_000, now: 1) == .replica)
        machine.sessionChanged()
        #expect(machine.replayed == 0)
        #expect(machine.decide(needing: 4_000, now: 2) == .measure)
        machine.measured(replayed: 3_000, lagMilliseconds: 0, now: 2)
        #expect(machine.decide(needing: 4_000, now: 3) == .primary(.behind))
    }

    @Test func aLaggingReplicaIsLeftAloneUntilAMeasurementASecondLater() {
        var machine = measured(replayed: 5_000, lag: 1_500, at: 0)
        #expect(machine.decide(needing: 10, now: 1) == .primary(.lagging))
        #expect(machine.decide(needing: 10, now: 999) == .primary(.lagging))
        #expect(machine.decide(needing: 10, now: 1_000) == .measure)
        machine.measured(replayed: 6_000, lagMilliseconds: 20, now: 1_000)
        #expect(machine.decide(needing: 10, now: 1_001) == .replica)
    }

    @Test func failuresLeaveItAloneForLongerEachTimeUpTo8Seconds() {
        var machine = measured()
        var now: UInt64 = 0
        var pauses: [UInt64] = []
        for _ in 0..<6 {
            machine.failed(now: now)
            var until = now
            while machine.decide(needing: 10, now: until) == .primary(.unavailable) { until += 1 }
            pauses.append(until - now)
            now = until
        }
        #expect(pauses == [1_000, 2_000, 4_000, 8_000, 8_000, 8_000])
        machine.measured(replayed: 2_000, lagMilliseconds: 0, now: now)
        machine.failed(now: now)
        #expect(machine.decide(needing: 10, now: now + 1_000) == .measure)  // back to 1 s
    }

    @Test func aFailureOrAServerNotInRecoveryLeavesItAloneForASecond() {
        var machine = measured()
        machine.failed(now: 50)
        #expect(machine.decide(needing: 10, now: 51) == .primary(.unavailable))
        #expect(machine.decide(needing: 10, now: 1_050) == .measure)
        machine.measured(replayed: nil, lagMilliseconds: 0, now: 1_050)  // a primary, or promoted
        #expect(machine.decide(needing: 10, now: 1_051) == .primary(.unavailable))
        #expect(machine.decide(needing: nil, now: 1_051) == .primary(.positionUnknown))
    }
}
