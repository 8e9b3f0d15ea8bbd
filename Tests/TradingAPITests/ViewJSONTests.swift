import Testing
@testable import TradingAPI

/// The exact bytes of every JSON shape in API.md.
@Suite struct ViewJSONTests {
    let user = UserID("00000000-0000-4000-8000-00000000000A")!

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func statusShape() {
        let event = LogEvent(id: "e1", eventType: "guard_trigger", status: "success", ticket: nil, symbol: "XAUUSD",
                             matched: nil, divergenceReason: nil, errorMessage: "a \"quoted\"\nline",
                             createdAt: Timestamp(microseconds: 1_761_482_096_000_000))
        let status = ReconciliationStatus(
            lastSync: LastSync(status: "success", durationMilliseconds: 245, errorMessage: nil, at: Timestamp(microseconds: 1_761_482_096_000_000)),
            totalSyncs: 850, openPositions: 2, matchedPositions: 2, divergences: 0, recentEvents: [event],
            now: Timestamp(microseconds: 1_761_482_100_000_000))
        #expect(text(ReconciliationStatusView.render(status, user: user)) == """
            {"user_id":"00000000-0000-4000-8000-00000000000a","status":"healthy","last_sync_at":"2025-10-26T12:34:56Z",\
            "total_syncs":850,"last_sync_duration_ms":245,"open_positions_count":2,"matched_positions":2,\
            "divergences_detected":0,"recent_events":[{"id":"e1","event_type":"guard_trigger","status":"success",\
            "ticket":null,"symbol":"XAUUSD","matched":null,"divergence_reason":null,"error_message":"a \\"quoted\\"\\nline",\
            "created_at":"2025-10-26T12:34:56Z"}],"error_message":null}
            """)
    }

    @Test func emptyStatusForUnknownUser() {
        let status = ReconciliationStatus(lastSync: nil, totalSyncs: 0, openPositions: 0, matchedPositions: 0, divergences: 0,
                                          recentEvents: [], now: Timestamp(microseconds: 0))
        #expect(text(ReconciliationStatusView.render(status, user: user)).contains(#""status":"idle","last_sync_at":null,"total_syncs":0,"last_sync_duration_ms":null"#))
    }

    @Test func openPositionsShape() {
        let open = OpenPositions(positions: [position(updatedAt: 1_761_482_096_000_000)], equity: 20_000)
        #expect(text(OpenPositionsView.render(open, user: user)) == """
            {"user_id":"00000000-0000-4000-8000-00000000000a","total_positions":1,"total_unrealized_pnl":52.5,\
            "total_unrealized_pnl_pct":0.26,"positions":[{"ticket":1,"symbol":"XAUUSD","direction":"buy","volume":0.1,\
            "entry_price":1950.5,"current_price":1955.75,"take_profit":null,"stop_loss":null,"unrealized_pnl":52.5,\
            "matched_with_bot":true,"divergence_reason":null,"opened_at":"1970-01-01T00:00:01Z",\
            "updated_at":"2025-10-26T12:34:56Z"}],"last_updated_at":"2025-10-26T12:34:56Z"}
            """)
        #expect(text(OpenPositionsView.render(OpenPositions(positions: [], equity: nil), user: user)) == """
            {"user_id":"00000000-0000-4000-8000-00000000000a","total_positions":0,"total_unrealized_pnl":0.0,\
            "total_unrealized_pnl_pct":null,"positions":[],"last_updated_at":null}
            """)
    }

    @Test func positionDetailShape() {
        var closed = position(isOpen: false)
        closed.closeReason = "take_profit"
        closed.closedPrice = 1960
        closed.pnlGBP = 95.25
        let body = text(PositionView.render(closed))
        #expect(body.hasSuffix(#""unrealized_pnl":null,"matched_with_bot":true,"divergence_reason":null,"opened_at":"1970-01-01T00:00:01Z","updated_at":"1970-01-01T00:00:02Z","open":false,"close_reason":"take_profit","closed_price":1960.0,"realized_pnl":95.25}"#))
        #expect(text(PositionView.render(position())).hasSuffix(#""open":true,"close_reason":null,"closed_price":null,"realized_pnl":null}"#))
    }

    @Test func guardsShape() {
        let alert = MarketGuardAlert(symbol: "XAUUSD", condition: "price_gap", level: .critical, priceGapPercent: 2.5,
                                     detectedAt: Timestamp(microseconds: 1_761_482_096_000_000))
        let guards = GuardsStatus(drawdown: DrawdownGuard(snapshot: .init(equity: 18_000, peakEquity: 20_000)), alerts: [alert])
        #expect(text(GuardsStatusView.render(guards, user: user, evaluatedAt: Timestamp(microseconds: 1_761_482_100_000_000))) == """
            {"user_id":"00000000-0000-4000-8000-00000000000a","system_status":"critical",\
            "drawdown_guard":{"current_equity":18000.0,"peak_equity":20000.0,"current_drawdown_pct":10.0,\
            "alert_type":"warning","should_close_all":false,"time_to_liquidation_seconds":null},\
            "market_guard_alerts":[{"symbol":"XAUUSD","condition_type":"price_gap","alert_type":"critical",\
            "price_gap_pct":2.5,"should_close_positions":true,"detected_at":"2025-10-26T12:34:56Z"}],\
            "any_positions_should_close":true,"last_evaluated_at":"2025-10-26T12:35:00Z"}
            """)
        let critical = GuardsStatus(drawdown: DrawdownGuard(snapshot: .init(equity: 15_000, peakEquity: 20_000)), alerts: [])
        #expect(text(GuardsStatusView.render(critical, user: user, evaluatedAt: Timestamp(microseconds: 0)))
            .contains(#""alert_type":"critical","should_close_all":true,"time_to_liquidation_seconds":60"#))
        let none = GuardsStatus(drawdown: DrawdownGuard(snapshot: nil), alerts: [])
        #expect(text(GuardsStatusView.render(none, user: user, evaluatedAt: Timestamp(microseconds: 0)))
            .contains(#""drawdown_guard":{"current_equity":null,"peak_equity":null,"current_drawdown_pct":0.0,"alert_type":"normal""#))
    }

    @Test func errorShapeAndHeaders() {
        let response = APIError.unauthorized("token expired").response(requestID: "abc123")
        #expect(response.status == 401)
        #expect(text(response.body) == #"{"error":"unauthorized","message":"token expired","request_id":"abc123"}"#)
        #expect(response.headers.contains { $0 == ("WWW-Authenticate", "Bearer") })
        #expect(APIError.unavailable(retryAfterSeconds: 1).response(requestID: "x").headers.contains { $0 == ("Retry-After", "1") })
        #expect(APIError.methodNotAllowed(allowed: ["GET", "HEAD"]).headers.contains { $0 == ("Allow", "GET, HEAD") })
    }

    @Test func jsonWriterEscapesControlCharactersAndDropsNonFiniteNumbers() {
        var json = JSONWriter()
        json.array { json in
            json.string("\u{01}\t\\")
            json.double(.nan)
            json.double(.infinity)
            json.double(1e-7)
        }
        #expect(text(json.bytes) == #"["\u0001\t\\",null,null,1e-07]"#)
    }
}
