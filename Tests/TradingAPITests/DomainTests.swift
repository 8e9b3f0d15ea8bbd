import Testing
@testable import TradingAPI

func position(ticket: Int64 = 1, symbol: String = "XAUUSD", direction: String = "buy", volume: Double = 0.1,
              entry: Double = 1950.5, current: Double? = 1955.75, contractSize: Double = 100, matched: Int? = 1,
              updatedAt: Int64 = 2_000_000, isOpen: Bool = true) -> PositionState {
    PositionState(ticket: ticket, symbol: symbol, direction: direction, volume: volume, entryPrice: entry,
                  currentPrice: current, matched: matched, openedAt: Timestamp(microseconds: 1_000_000),
                  updatedAt: Timestamp(microseconds: updatedAt), contractSize: contractSize, isOpen: isOpen)
}

@Suite struct PositionMathTests {
    @Test func unrealizedPnLOfBuyAndSell() {
        #expect(Rounding.twoDecimals(position().unrealizedPnL!) == 52.5)
        #expect(Rounding.twoDecimals(position(direction: "sell").unrealizedPnL!) == -52.5)
        #expect(Rounding.twoDecimals(position(symbol: "EURUSD", direction: "sell", volume: 1, entry: 1.1, current: 1.09,
                                              contractSize: 100_000).unrealizedPnL!) == 1000)
    }

    @Test func noCurrentPriceOrClosedMeansNoPnL() {
        #expect(position(current: nil).unrealizedPnL == nil)
        #expect(position(isOpen: false).unrealizedPnL == nil)
    }

    @Test func totalsSkipNullsAndUseLatestEquity() {
        let open = OpenPositions(positions: [position(), position(ticket: 2, current: nil), position(ticket: 3, direction: "sell", current: 1950)],
                                 equity: 20_000)
        #expect(Rounding.twoDecimals(open.totalUnrealizedPnL) == 57.5)
        #expect(Rounding.twoDecimals(open.totalUnrealizedPnLPercent!) == 0.29)
        #expect(OpenPositions(positions: [position()], equity: nil).totalUnrealizedPnLPercent == nil)
        #expect(OpenPositions(positions: [], equity: 100).totalUnrealizedPnL == 0)
        #expect(OpenPositions(positions: [], equity: 100).lastUpdatedAt == nil)
    }

    @Test func roundingIsHalfAwayFromZero() {
        #expect(Rounding.twoDecimals(1.005) == 1.01)
        #expect(Rounding.twoDecimals(-1.005) == -1.01)
        #expect(Rounding.twoDecimals(2.675) == 2.68)
        #expect(Rounding.twoDecimals(0.125) == 0.13)
        #expect(Rounding.twoDecimals(1.004999) == 1.0)
        #expect(Rounding.twoDecimals(-0.0049) == 0)
        #expect(Rounding.twoDecimals(123456.789) == 123456.79)
    }
}

@Suite struct DrawdownTests {
    @Test func thresholdsCompareTheUnroundedValue() {
        #expect(DrawdownGuard(snapshot: .init(equity: 18_000, peakEquity: 20_000)).level == .warning)
        #expect(DrawdownGuard(snapshot: .init(equity: 18_000.2, peakEquity: 20_000)).level == .normal)  // 9.999 %
        #expect(DrawdownGuard(snapshot: .init(equity: 16_000, peakEquity: 20_000)).level == .critical)
        #expect(DrawdownGuard(snapshot: .init(equity: 16_000.01, peakEquity: 20_000)).level == .warning)
    }

    @Test func noSnapshotOrZeroPeakIsZero() {
        #expect(DrawdownGuard(snapshot: nil).percent == 0)
        #expect(DrawdownGuard(snapshot: .init(equity: 5, peakEquity: 0)).percent == 0)
        #expect(DrawdownGuard(snapshot: nil).level == .normal)
    }

    @Test func systemStatusIsTheWorstLevel() {
        let alert = { (level: GuardLevel) in
            MarketGuardAlert(symbol: "XAUUSD", condition: "price_gap", level: level, priceGapPercent: 2.5, detectedAt: .init(microseconds: 0))
        }
        let calm = DrawdownGuard(snapshot: .init(equity: 100, peakEquity: 100))
        #expect(GuardsStatus(drawdown: calm, alerts: []).systemStatus == "healthy")
        #expect(GuardsStatus(drawdown: calm, alerts: [alert(.normal), alert(.warning)]).systemStatus == "warning")
        #expect(GuardsStatus(drawdown: calm, alerts: [alert(.warning)]).anyPositionsShouldClose == false)
        #expect(GuardsStatus(drawdown: calm, alerts: [alert(.critical)]).anyPositionsShouldClose)
        let deep = DrawdownGuard(snapshot: .init(equity: 70, peakEquity: 100))
        #expect(GuardsStatus(drawdown: deep, alerts: [alert(.warning)]).systemStatus == "critical")
        #expect(GuardsStatus(drawdown: deep, alerts: []).anyPositionsShouldClose)
    }

    @Test func changesWhenTheOldestAlertLeavesTheWindow() {
        let alert = { (seconds: Int64) in
            MarketGuardAlert(symbol: "XAUUSD", condition: "price_gap", level: .critical, priceGapPercent: 2.5,
                             detectedAt: .init(microseconds: seconds * 1_000_000))
        }
        let calm = DrawdownGuard(snapshot: nil)
        #expect(GuardsStatus(drawdown: calm, alerts: []).changesAt == nil)
        #expect(GuardsStatus(drawdown: calm, alerts: [alert(500), alert(100), alert(300)]).changesAt
            == Timestamp(microseconds: (100 + 900) * 1_000_000 + 1))
    }
}

@Suite struct ReconciliationStatusTests {
    let now = Timestamp(microseconds: 1_000_000_000_000)

    func status(last: String?, secondsAgo: Int64 = 10, divergences: Int = 0, error: String? = "boom") -> ReconciliationStatus {
        let lastSync = last.map { LastSync(status: $0, durationMilliseconds: 245, errorMessage: error,
                                           at: Timestamp(microseconds: now.microseconds - secondsAgo * 1_000_000)) }
        return ReconciliationStatus(lastSync: lastSync, totalSyncs: 1, openPositions: 1, matchedPositions: 0,
                                    divergences: divergences, recentEvents: [], now: now)
    }

    @Test func rules() {
        #expect(status(last: nil).status == "idle")
        #expect(status(last: "success", secondsAgo: 301).status == "idle")
        #expect(status(last: "success", secondsAgo: 300).status == "healthy")
        #expect(status(last: "failed").status == "warning")
        #expect(status(last: "partial").status == "warning")
        #expect(status(last: "success", divergences: 1).status == "warning")
    }

    @Test func changesWhenTheLastSyncTurnsIdle() {
        let healthy = status(last: "success", secondsAgo: 10)
        let turnsIdle = healthy.lastSync!.at.microseconds + 300 * 1_000_000 + 1
        #expect(healthy.changesAt == Timestamp(microseconds: turnsIdle))
        var later = healthy
        later.now = Timestamp(microseconds: turnsIdle - 1)
        #expect(later.status == "healthy")
        later.now = Timestamp(microseconds: turnsIdle)
        #expect(later.status == "idle")
        #expect(status(last: "success", secondsAgo: 301).changesAt == nil)
        #expect(status(last: nil).changesAt == nil)
    }

    @Test func errorMessageOnlyForFailedLastSyncEvenWhenIdle() {
        #expect(status(last: "failed", secondsAgo: 1000).errorMessage == "boom")
        #expect(status(last: "partial").errorMessage == nil)
        #expect(status(last: nil).errorMessage == nil)
    }
}

@Suite struct TimestampTests {
    @Test func parsesRFC3339() {
        let at = { (text: String) in Timestamp(rfc3339: text)?.microseconds }
        #expect(at("2025-10-26T12:34:56Z") == 1_761_482_096_000_000)
        #expect(at("2025-10-26t12:34:56z") == 1_761_482_096_000_000)
        #expect(at("2025-10-26T12:34:56.123Z") == 1_761_482_096_123_000)
        #expect(at("2025-10-26T14:34:56.000001+02:00") == 1_761_482_096_000_001)
        #expect(at("2025-10-26T12:04:56-00:30") == 1_761_482_096_000_000)
        #expect(at("2025-10-26T12:34:56.0000005Z") == 1_761_482_096_000_001)  // rounded, as Postgres does
        #expect(at("1970-01-01T00:00:00Z") == 0)
        #expect(at("1969-12-31T23:59:59Z") == -1_000_000)
        #expect(at("2024-02-29T00:00:00Z") != nil)
        for bad in ["2023-02-29T00:00:00Z", "2025-10-26 12:34:56Z", "2025-10-26T12:34:56", "2025-10-26T24:00:00Z",
                    "2025-10-26T12:34:60Z", "2025-13-01T00:00:00Z", "2025-10-26T12:34:56.Z", "0000-01-01T00:00:00Z",
                    "2025-10-26T12:34:56+0200", "2025-10-26T12:34:56ZZ", "2025-10-26T12:34:56.1234567890Z", "", "now"] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
        for micros: Int64 in [0, 1, 1_761_482_096_123_456, -86_400_000_000, 253_402_300_799_000_000] {
            #expect(Timestamp(rfc3339: Timestamp(microseconds: micros).rfc3339)?.microseconds == micros)
        }
    }

    @Test func formatsRFC3339UTC() {
        #expect(Timestamp(microseconds: 0).rfc3339 == "1970-01-01T00:00:00Z")
        #expect(Timestamp(microseconds: 1_761_482_096_000_000).rfc3339 == "2025-10-26T12:34:56Z")
        #expect(Timestamp(microseconds: 1_761_482_096_123_000).rfc3339 == "2025-10-26T12:34:56.123Z")
        #expect(Timestamp(microseconds: 1_761_482_096_000_001).rfc3339 == "2025-10-26T12:34:56.000001Z")
        #expect(Timestamp(microseconds: 951_782_400_000_000).rfc3339 == "2000-02-29T00:00:00Z")
        #expect(Timestamp(microseconds: -1_000_000).rfc3339 == "1969-12-31T23:59:59Z")
    }
}
