import Postgres

/// `GET /api/v1/guards/status`: drawdown and market guards.
enum GuardsStatusView {
    static let recentAlerts = PreparedStatement(name: "guards_recent", sql: """
        SELECT symbol, guard_condition, guard_level, price_gap_pct, (extract(epoch FROM created_at) * 1000000)::int8
        FROM reconciliation_logs
        WHERE user_id = $1 AND event_type = 'guard_trigger'
          AND created_at >= now() - make_interval(mins => \(GuardsStatus.alertWindowMinutes))
        ORDER BY created_at DESC, id DESC
        """)

    static func load(user: UserID, from database: PostgresConnection) throws(PostgresError) -> GuardsStatus {
        let snapshot = try PositionsView.loadEquity(user: user, from: database)
        let rows = try database.rows(recentAlerts, [user.uuid])
        let alerts = (0..<rows.count).map { row in
            MarketGuardAlert(symbol: rows.string(row, 0) ?? "", condition: rows.string(row, 1) ?? "",
                             level: GuardLevel(rawValue: rows.string(row, 2) ?? "") ?? .normal,
                             priceGapPercent: rows.double(row, 3),
                             detectedAt: rows.timestamp(row, 4) ?? Timestamp(microseconds: 0))
        }
        return GuardsStatus(drawdown: DrawdownGuard(snapshot: snapshot), alerts: alerts)
    }

    static func render(_ guards: GuardsStatus, user: UserID, evaluatedAt: Timestamp) -> [UInt8] {
        var json = JSONWriter(capacity: 1024)
        let drawdown = guards.drawdown
        json.object { json in
            json.field("user_id", user.uuid)
            json.field("system_status", guards.systemStatus)
            json.key("drawdown_guard")
            json.object { json in
                json.field("current_equity", drawdown.snapshot?.equity)
                json.field("peak_equity", drawdown.snapshot?.peakEquity)
                json.rounded("current_drawdown_pct", drawdown.percent)
                json.field("alert_type", drawdown.level.rawValue)
                json.field("should_close_all", drawdown.shouldCloseAll)
                json.field("time_to_liquidation_seconds", drawdown.shouldCloseAll ? DrawdownGuard.secondsToLiquidation : nil)
            }
            json.key("market_guard_alerts")
            json.array { json in
                for alert in guards.alerts {
                    json.object { json in
                        json.field("symbol", alert.symbol)
                        json.field("condition_type", alert.condition)
                        json.field("alert_type", alert.level.rawValue)
                        json.field("price_gap_pct", alert.priceGapPercent)
                        json.field("should_close_positions", alert.shouldClosePositions)
                        json.field("detected_at", alert.detectedAt)
                    }
                }
            }
            json.field("any_positions_should_close", guards.anyPositionsShouldClose)
            json.field("last_evaluated_at", evaluatedAt)
        }
        return json.bytes
    }
}
