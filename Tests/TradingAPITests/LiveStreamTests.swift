import Testing
@testable import TradingAPI

@Suite struct LiveStreamTests {
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
        #expect(registry.expire(now: 200) == [a1])
        #expect(registry.expire(now: 200).isEmpty, "handed out once")
        #expect(registry.channels(of: alice) == [a2] && registry.nextExpiry == 250)
        #expect(Set(registry.expire(now: 1_000)) == [a2, b1])
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
}
