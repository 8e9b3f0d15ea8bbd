import Postgres

/// `GET /api/v1/guards/status`: drawdown and market guards.
enum GuardsStatusView: Endpoint {
    typealias Parameters = Void
    static let path = "guards/status"
    static let cacheName = "guards"

    /// A market guard alert's columns, as `statement` names them.
    enum AlertColumn: Int, ResultColumn {
        case symbol, condition, level, priceGap, detectedAt

        var name: String {
            switch self {
            case .symbol: "symbol"
            case .condition: "guard_condition"
            case .level: "guard_level"
            case .priceGap: "price_gap_pct"
            case .detectedAt: "detected_at_us"
            }
        }
    }

    /// One round trip: the latest equity joined with the alerts of the last 15 minutes; a single
    /// row of `NULL` alerts when there are none.
    static let statement = PreparedStatement(name: "guards_view", sql: """
        SELECT eq.equity, eq.peak_equity, a.*
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (\(EquitySnapshot.latestSQL)) eq ON true
        LEFT JOIN LATERAL (
            SELECT symbol, guard_condition, guard_level, price_gap_pct,
                   (extract(epoch FROM created_at) * 1000000)::int8 AS detected_at_us,
                   created_at AS sort_at, id AS sort_id
            FROM reconciliation_logs
            WHERE user_id = $1 AND event_type = 'guard_trigger'
              AND created_at >= now() - make_interval(mins => \(GuardsStatus.alertWindowMinutes))
        ) a ON true
        ORDER BY a.sort_at DESC, a.sort_id DESC
        """)

    static func render(_: Void, context: ParameterContext, now: Timestamp, database: PostgresConnection) throws(PostgresError) -> RenderedView? {
        let user = context.user
        let guards = try decode(try database.execute(statement, [user.uuid]))
        return RenderedView(body: render(guards, user: user, evaluatedAt: now), changesAt: guards.changesAt)
    }

    static func decode(_ result: PostgresResult) throws(PostgresError) -> GuardsStatus {
        let alerts = try NamedRows(result, AlertColumn.self).all.filter { !$0.isNull(.symbol) }.map { row in
            MarketGuardAlert(symbol: row.string(.symbol) ?? "", condition: row.string(.condition) ?? "",
                             level: GuardLevel(rawValue: row.string(.level) ?? "") ?? .normal,
                             priceGapPercent: row.double(.priceGap),
                             detectedAt: row.timestamp(.detectedAt) ?? Timestamp(microseconds: 0))
        }
        let equity = try NamedRows(result, EquitySnapshot.Column.self).first.flatMap(EquitySnapshot.init)
        return GuardsStatus(drawdown: DrawdownGuard(snapshot: equity), alerts: alerts)
    }

    static func render(_ guards: GuardsStatus, user: UserID, evaluatedAt: Timestamp) -> [UInt8] {
        var json = JSONWriter(capacity: 1024)
        json.object { json in
            json.field("user_id", user.uuid)
            json.field("system_status", guards.systemStatus)
            json.key("drawdown_guard")
            write(guards.drawdown, into: &json)
            json.key("market_guard_alerts")
            json.array { json in
                for alert in guards.alerts {
                    write(alert, into: &json)
                }
            }
            json.field("any_positions_should_close", guards.anyPositionsShouldClose)
            json.field("last_evaluated_at", evaluatedAt)
        }
        return json.bytes
    }

    /// The view's `drawdown_guard` object (also the live stream's `guard` event).
    static func write(_ drawdown: DrawdownGuard, into json: inout JSONWriter) {
        json.object { json in
            json.field("current_equity", drawdown.snapshot?.equity)
            json.field("peak_equity", drawdown.snapshot?.peakEquity)
            json.rounded("current_drawdown_pct", drawdown.percent)
            json.field("alert_type", drawdown.level.rawValue)
            json.field("should_close_all", drawdown.shouldCloseAll)
            json.field("time_to_liquidation_seconds", drawdown.shouldCloseAll ? DrawdownGuard.secondsToLiquidation : nil)
        }
    }

    /// One of the view's `market_guard_alerts` (also the live stream's `guard` event).
    static func write(_ alert: MarketGuardAlert, into json: inout JSONWriter) {
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
