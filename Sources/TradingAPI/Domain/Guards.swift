/// A guard's level, ordered from harmless to acting.
public enum GuardLevel: String, Comparable, Sendable {
    case normal, warning, critical

    public static func < (lhs: GuardLevel, rhs: GuardLevel) -> Bool { lhs.rank < rhs.rank }

    private var rank: Int {
        switch self {
        case .normal: 0
        case .warning: 1
        case .critical: 2
        }
    }
}

/// The user's latest equity snapshot.
public struct EquitySnapshot: Equatable, Sendable {
    public var equity: Double
    public var peakEquity: Double

    public init(equity: Double, peakEquity: Double) {
        self.equity = equity
        self.peakEquity = peakEquity
    }
}

/// Drawdown from the latest snapshot: `(peak - equity) / peak × 100`, 0 when peak is 0 or
/// there is no snapshot; `warning` from 10 %, `critical` from 20 %, on the unrounded value.
public struct DrawdownGuard: Equatable, Sendable {
    public static let warningPercent = 10.0
    public static let criticalPercent = 20.0
    /// Seconds the bot is given before it liquidates, reported while the drawdown is critical.
    public static let secondsToLiquidation = 60

    public var snapshot: EquitySnapshot?

    public init(snapshot: EquitySnapshot?) { self.snapshot = snapshot }

    public var percent: Double {
        guard let snapshot, snapshot.peakEquity != 0 else { return 0 }
        return (snapshot.peakEquity - snapshot.equity) / snapshot.peakEquity * 100
    }

    public var level: GuardLevel {
        let percent = percent
        if percent >= Self.criticalPercent { return .critical }
        if percent >= Self.warningPercent { return .warning }
        return .normal
    }

    public var shouldCloseAll: Bool { level == .critical }
}

/// One `guard_trigger` row of the last 15 minutes.
public struct MarketGuardAlert: Equatable, Sendable {
    public var symbol: String
    public var condition: String
    public var level: GuardLevel
    public var priceGapPercent: Double?
    public var detectedAt: Timestamp

    public init(symbol: String, condition: String, level: GuardLevel, priceGapPercent: Double?, detectedAt: Timestamp) {
        self.symbol = symbol
        self.condition = condition
        self.level = level
        self.priceGapPercent = priceGapPercent
        self.detectedAt = detectedAt
    }

    public var shouldClosePositions: Bool { level == .critical }
}

/// The guards picture: drawdown plus recent market alerts.
public struct GuardsStatus: Equatable, Sendable {
    /// Alerts younger than this are reported.
    public static let alertWindowMinutes = 15

    public var drawdown: DrawdownGuard
    public var alerts: [MarketGuardAlert]

    public init(drawdown: DrawdownGuard, alerts: [MarketGuardAlert]) {
        self.drawdown = drawdown
        self.alerts = alerts
    }

    public var anyPositionsShouldClose: Bool {
        drawdown.shouldCloseAll || alerts.contains { $0.shouldClosePositions }
    }

    /// When the clock alone changes the view: the oldest alert leaving the 15-minute window;
    /// `nil` without alerts.
    public var changesAt: Timestamp? {
        alerts.map(\.detectedAt).min()?.leavingWindow(ofSeconds: Int64(Self.alertWindowMinutes) * 60)
    }

    /// The worst level among drawdown and alerts, `normal` shown as `healthy`.
    public var systemStatus: String {
        let worst = alerts.map(\.level).reduce(drawdown.level, max)
        return worst == .normal ? "healthy" : worst.rawValue
    }
}
