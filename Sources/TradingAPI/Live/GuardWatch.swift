/// Which guard changes the live stream announces (`event: guard`), per user: a `critical` market
/// guard alert not announced before, and every change of the drawdown guard's level (into
/// `warning` or `critical` at 10 %/20 %, and back). No I/O: `LivePublisher` reads the guards view
/// after a user's commit and publishes what this returns.
///
/// A user not seen before counts as `normal` with no alerts, so the first commit that finds a
/// critical alert or drawdown announces it.
struct GuardWatch {
    /// What the stream carries: the alert or the drawdown guard as the guards view shows it.
    enum Event: Equatable {
        case alert(MarketGuardAlert)
        case drawdown(DrawdownGuard)
    }

    private struct Seen {
        var drawdownLevel = GuardLevel.normal
        /// Critical alerts announced and still in the view's window: symbol and detection time.
        var criticalAlerts: Set<AlertKey> = []
    }

    private struct AlertKey: Hashable {
        var symbol: String
        var detectedAt: Int64
    }

    private var seen: [UserID: Seen] = [:]

    /// The events `guards` brings for `user` since the last observation, oldest alert first.
    mutating func observe(_ guards: GuardsStatus, of user: UserID) -> [Event] {
        var memory = seen[user] ?? Seen()
        var events: [Event] = []
        if guards.drawdown.level != memory.drawdownLevel {
            events.append(.drawdown(guards.drawdown))
            memory.drawdownLevel = guards.drawdown.level
        }
        let critical = guards.alerts.filter { $0.level == .critical }
        let keys = Set(critical.map { AlertKey(symbol: $0.symbol, detectedAt: $0.detectedAt.microseconds) })
        for alert in critical.sorted(by: { $0.detectedAt.microseconds < $1.detectedAt.microseconds })
        where !memory.criticalAlerts.contains(AlertKey(symbol: alert.symbol, detectedAt: alert.detectedAt.microseconds)) {
            events.append(.alert(alert))
        }
        memory.criticalAlerts = keys  // alerts that left the window are forgotten with it
        seen[user] = memory
        return events
    }

    /// Forgets `user` (no open stream is left).
    mutating func forget(_ user: UserID) {
        seen[user] = nil
    }

    /// `event: guard`'s data: `{"drawdown_guard":{…}}` or `{"market_guard_alert":{…}}`.
    static func data(_ event: Event) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.object { json in
            switch event {
            case .drawdown(let drawdown):
                json.key("drawdown_guard")
                GuardsStatusView.write(drawdown, into: &json)
            case .alert(let alert):
                json.key("market_guard_alert")
                GuardsStatusView.write(alert, into: &json)
            }
        }
        return json.bytes
    }
}
