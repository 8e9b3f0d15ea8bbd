import Postgres

/// `GET /api/v1/guards/status`: drawdown and market guards.
enum GuardsStatusView {
    /// One round trip: the latest equity (columns 0–1) joined with the alerts of the last
    /// 15 minutes from column 2 on; a single row of `NULL` alerts when there are none.
    static let statement = PreparedStatement(name: "guards_view", sql: """
        SELECT eq.equity, eq.peak_equity, a.*
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (\(PositionsView.latestEquitySQL)) eq ON true
        LEFT JOIN LATERAL (
            SELECT symbol, guard_condition, guard_level, price_gap_pct,
                   (extract(epoch FROM created_at) * 1000000)::int8, created_at AS sort_at, id AS sort_id
            FROM reconciliation_logs
            WHERE user_id = $1 AND event_type = 'guard_trigger'
              AND created_at >= now() - make_interval(mins => \(GuardsStatus.alertWindowMinutes))
        ) a ON true
        ORDER BY a.sort_at DESC, a.sort_id DESC
        """)

    static func load(user: UserID, from database: PostgresConnection) throws(PostgresError) -> GuardsStatus {
        let rows = try database.rows(statement, [user.uuid])
        let alerts = (0..<rows.count).filter { !rows.isNull($0, 2) }.map { row in
            MarketGuardAlert(symbol: rows.string(row, 2) ?? "", condition: rows.string(row, 3) ?? "",
                             level: GuardLevel(rawValue: rows.string(row, 4) ?? "") ?? .normal,
                             priceGapPercent: rows.double(row, 5),
                             detectedAt: rows.timestamp(row, 6) ?? Timestamp(microseconds: 0))
        }
        return GuardsStatus(drawdown: DrawdownGuard(snapshot: EquitySnapshot(rows, 0, from: 0)), alerts: alerts)
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
