import Testing
@testable import TradingAPI

@Suite struct LiveStreamTests {
    @Test func thePublishersLockIsItsNamesAndFitsPgLocksObjid() throws {
        let tcp = LivePublisher.lockKey(of: "10.0.0.10:8091")
        #expect(tcp == LivePublisher.lockKey(of: "10.0.0.10:8091"))
        #expect(tcp != LivePublisher.lockKey(of: "/run/trading-api-nchan/publish.sock"))
        for name in ["10.0.0.10:8091", "/run/trading-api-nchan/publish.sock", ""] {
            let key = try #require(UInt32(LivePublisher.lockKey(of: name)))
            #expect(key <= 0x7fff_ffff)
        }
    }

    let alice = UserID("00000000-0000-4000-8000-00000000000a")!
    let bob = UserID("00000000-0000-4000-8000-00000000000b")!

    @Test func aTokensChannelIsItsHashNeverTheTokenOrTheUser() {
        let channel = StreamChannel(token: "header.payload.signature")
        #expect(channel.id.hasPrefix("t.") && channel.id.utf8.count == 34)
        #expect(channel == StreamChannel(token: "header.payload.signature"))
        #expect(channel != StreamChannel(token: "header.payload.signaturf"))
        #expect(StreamChannel(id: channel.id) == channel)
        for bad in ["", "t.", "u." + String(repeating: "0", count: 32), "t." + String(repeating: "0", count: 31),
                    "t." + String(repeating: "G", count: 32), "t." + String(repeating: "0", count: 32) + "/x"] {
            #expect(StreamChannel(id: bad) == nil, "\(bad)")
        }
    }

    @Test func aRegistrationRoundTripsAndRefusesAnythingElse() {
        let registration = StreamRegistration(user: alice, channel: StreamChannel(token: "a"), expiresAt: 1_796_000_100)
        #expect(StreamRegistration(payload: registration.payload) == registration)
        for bad in ["", "x y z", "\(alice.uuid) t.00 5", "\(alice.uuid) \(registration.channel.id)",
                    "\(alice.uuid) \(registration.channel.id) soon", "\(registration.payload) extra"] {
            #expect(StreamRegistration(payload: bad) == nil, "\(bad)")
        }
    }

    @Test func channelsBelongToTheirUserUntilTheirTokenExpires() {
        var registry = StreamRegistry()
        let a1 = StreamChannel(token: "a1"), a2 = StreamChannel(token: "a2"), b1 = StreamChannel(token: "b1")
        registry.register(a1, user: alice, expiresAt: 200, now: 100)
        registry.register(a2, user: alice, expiresAt: 300, now: 100)
        registry.register(b1, user: bob, expiresAt: 250, now: 100)
        registry.register(StreamChannel(token: "old"), user: bob, expiresAt: 100, now: 100)  // already expired
        registry.register(a1, user: bob, expiresAt: 900, now: 100)  // another user's channel: ignored
        #expect(Set(registry.channels(of: alice)) == [a1, a2])
        #expect(registry.channels(of: bob) == [b1])
        #expect(registry.count == 3 && registry.nextExpiry == 200)

        #expect(registry.expire(now: 199).isEmpty)
        let first = registry.expire(now: 200)
        #expect(first.map(\.channel) == [a1] && first.map(\.user) == [alice])
        #expect(registry.expire(now: 200).isEmpty, "handed out once")
        #expect(registry.channels(of: alice) == [a2] && registry.nextExpiry == 250)
        #expect(Set(registry.expire(now: 1_000).map(\.channel)) == [a2, b1])
        #expect(registry.count == 0 && registry.nextExpiry == nil && registry.allChannels.isEmpty)
    }

    @Test func aReRegisteredChannelKeepsTheLaterExpiry() {
        var registry = StreamRegistry()
        let channel = StreamChannel(token: "a")
        registry.register(channel, user: alice, expiresAt: 300, now: 100)
        registry.register(channel, user: alice, expiresAt: 200, now: 150)
        #expect(registry.nextExpiry == 300)
    }

    @Test func aStreamIsHandedToNginxOrResyncedOrRefused() throws {
        #expect(StreamEndpoint.credentials(of: "Bearer abc.def") == "abc.def")
        #expect(StreamEndpoint.credentials(of: "bearer   abc") == "abc")
        let resync = StreamEndpoint.resync()
        let text = String(decoding: resync.body, as: UTF8.self)
        #expect(resync.status == 200 && resync.contentType.hasPrefix("text/event-stream"))
        #expect(text.contains("\nevent: resync\nid\ndata: {\"reason\":\"reconnected\"}\n\n") && text.hasPrefix("retry: 1"))
    }

    @Test func theSessionCookieIsFoundAmongOthersAndNeverEmpty() {
        #expect(StreamSession.token(inCookieHeader: "trading_api_stream=a.b.c") == "a.b.c")
        #expect(StreamSession.token(inCookieHeader: "theme=dark;  trading_api_stream=a.b.c; x=1") == "a.b.c")
        #expect(StreamSession.token(inCookieHeader: "trading_api_stream=") == nil)
        #expect(StreamSession.token(inCookieHeader: "xtrading_api_stream=a; other=b") == nil)
        #expect(StreamSession.token(inCookieHeader: "") == nil)
    }

    private func status(equity: Double, peak: Double, alerts: [MarketGuardAlert] = []) -> GuardsStatus {
        GuardsStatus(drawdown: DrawdownGuard(snapshot: EquitySnapshot(equity: equity, peakEquity: peak)), alerts: alerts)
    }

    private func alert(_ symbol: String, _ level: GuardLevel, at microseconds: Int64) -> MarketGuardAlert {
        MarketGuardAlert(symbol: symbol, condition: "price_gap", level: level, priceGapPercent: 3.5,
                         detectedAt: Timestamp(microseconds: microseconds))
    }

    @Test func criticalAlertsAreAnnouncedOnceAndDrawdownLevelsOnEveryChange() {
        var watch = GuardWatch()
        #expect(watch.observe(status(equity: 9500, peak: 10000), of: alice).isEmpty, "5 %: normal, as assumed")
        let warning = status(equity: 9000, peak: 10000)
        #expect(watch.observe(warning, of: alice) == [.drawdown(warning.drawdown)], "10 % exactly: warning")
        #expect(watch.observe(warning, of: alice).isEmpty)
        let critical = status(equity: 7900, peak: 10000, alerts: [alert("XAUUSD", .critical, at: 2), alert("EURUSD", .warning, at: 3),
                                                                   alert("GBPUSD", .critical, at: 1)])
        #expect(watch.observe(critical, of: alice) == [.drawdown(critical.drawdown), .alert(critical.alerts[2]), .alert(critical.alerts[0])])
        #expect(watch.observe(critical, of: alice).isEmpty, "each once")
        let another = status(equity: 7900, peak: 10000, alerts: critical.alerts + [alert("XAUUSD", .critical, at: 9)])
        #expect(watch.observe(another, of: alice) == [.alert(another.alerts[3])])
        let recovered = status(equity: 9900, peak: 10000)
        #expect(watch.observe(recovered, of: alice) == [.drawdown(recovered.drawdown)], "and back to normal")
        #expect(watch.observe(critical, of: bob).count == 3, "per user")
        watch.forget(bob)
        #expect(watch.observe(critical, of: bob).count == 3, "forgotten")
    }

    @Test func aGuardEventCarriesTheObjectAsTheGuardsViewShowsIt() {
        let drawdown = String(decoding: GuardWatch.data(.drawdown(status(equity: 7900, peak: 10000).drawdown)), as: UTF8.self)
        #expect(drawdown == #"{"drawdown_guard":{"current_equity":7900.0,"peak_equity":10000.0,"current_drawdown_pct":21.0,"alert_type":"critical","should_close_all":true,"time_to_liquidation_seconds":60}}"#)
        let market = String(decoding: GuardWatch.data(.alert(alert("XAUUSD", .critical, at: 1_796_000_000_000_000))), as: UTF8.self)
        #expect(market.hasPrefix(#"{"market_guard_alert":{"symbol":"XAUUSD","condition_type":"price_gap","alert_type":"critical","price_gap_pct":3.5,"should_close_positions":true,"detected_at":""#))
    }

    @Test func aReconnectResumesOnlyFromAnIdNchanCertainlyHolds() {
        let recent = ["100:0", "100:1", "101:0", "105:0"]
        #expect(StreamResume.decide(lastEventID: "101:0", recent: recent, held: 4, newest: "105:0") == .resume(from: "101:0"))
        #expect(StreamResume.decide(lastEventID: "105:0", recent: recent, held: 1, newest: "105:0") == .resume(from: "105:0"))
        #expect(StreamResume.decide(lastEventID: "100:0", recent: recent, held: 3, newest: "105:0") == .resync, "out of the buffer")
        #expect(StreamResume.decide(lastEventID: "101:0", recent: recent, held: 0, newest: nil) == .resync, "nchan holds nothing (a reload)")
        #expect(StreamResume.decide(lastEventID: "101:0", recent: recent, held: 4, newest: "106:0") == .resync, "not the supervisor's")
        #expect(StreamResume.decide(lastEventID: "99:0", recent: recent, held: 4, newest: "105:0") == .resync, "never published here")
        #expect(StreamResume.decide(lastEventID: "101:0", recent: [], held: 4, newest: "105:0") == .resync)
        for id in ["1796120498:0", "1:23"] { #expect(StreamResume.isMessageID(id)) }
        for id in ["", ":", "1:", ":1", "1:2:3", "1796120498:[0],-", "a:1", "1:1\r\nX: y", String(repeating: "9", count: 21) + ":0"] {
            #expect(!StreamResume.isMessageID(id), "\(id)")
        }
        #expect(ChannelInfo.parse(Array(#"{"messages": 3, "requested": 0, "subscribers": 1, "last_message_id": "1796120498:2" }"#.utf8))
                == ChannelInfo(messages: 3, newest: "1796120498:2"))
        #expect(ChannelInfo.parse(Array("queued messages: 3".utf8)) == nil)
    }
}
