import Testing
@testable import TradingAPI

@Suite struct RoutingTests {
    @Test func matchesEveryEndpoint() throws {
        #expect(try Router.route(method: "GET", path: "/api/v1/health") == .health)
        #expect(try Router.route(method: "GET", path: "/api/v1/reconciliation/status") == .view(ReconciliationStatusView.self, pathSegment: nil))
        #expect(try Router.route(method: "GET", path: "/api/v1/reconciliation/logs") == .view(ReconciliationLogsView.self, pathSegment: nil))
        #expect(try Router.route(method: "GET", path: "/api/v1/positions/open") == .view(OpenPositionsView.self, pathSegment: nil))
        #expect(try Router.route(method: "GET", path: "/api/v1/positions/12345") == .view(PositionView.self, pathSegment: "12345"))
        #expect(try Router.route(method: "HEAD", path: "/api/v1/guards/status") == .view(GuardsStatusView.self, pathSegment: nil))
    }

    @Test func theTicketTemplateIsNotAPath() throws {
        #expect(try Router.route(method: "GET", path: "/api/v1/positions/{ticket}") == .view(PositionView.self, pathSegment: "{ticket}"))
    }

    @Test func everyEndpointHasItsOwnPathAndCacheName() {
        #expect(Set(Endpoints.all.map { $0.path }).count == Endpoints.all.count)
        #expect(Set(Endpoints.all.map { $0.cacheName }).count == Endpoints.all.count)
        #expect(!Endpoints.all.contains { $0.path == Router.healthPath })
    }

    @Test func unknownPathsAreNotFound() {
        for path in ["/", "/api/v1/", "/api/v1/nope", "/api/v2/health", "/api/v1/positions/", "/api/v1/positions/1/2", "/api/v1/health/"] {
            #expect(throws: APIError.notFound("no such endpoint"), "\(path)") { try Router.route(method: "GET", path: path) }
        }
    }

    @Test func wrongMethodIsNotAllowedEvenForUnknownTickets() {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            #expect(throws: APIError.methodNotAllowed(allowed: ["GET", "HEAD"])) {
                try Router.route(method: method, path: "/api/v1/positions/abc")
            }
        }
    }

    @Test func notFoundComesBeforeMethodCheck() {
        #expect(throws: APIError.notFound("no such endpoint")) { try Router.route(method: "POST", path: "/api/v1/nope") }
    }
}

@Suite struct ParameterTests {
    @Test func integersArePlainDigitsInRange() throws {
        let params = QueryParameters("hours=5&limit=500&x=1")
        #expect(try params.integer("hours", in: 1...168, default: 1) == 5)
        #expect(try params.integer("limit", in: 1...500, default: 100) == 500)
        #expect(try params.integer("absent", in: 1...500, default: 100) == 100)
        for bad in ["0", "169", "-1", "+5", "1.5", "abc", "", "%205", "1e2", "99999999999999999999", "５"] {
            #expect(throws: APIError.badRequest("hours must be a whole number from 1 to 168"), "\(bad)") {
                try QueryParameters("hours=\(bad)").integer("hours", in: 1...168, default: 1)
            }
        }
    }

    @Test func firstOccurrenceWinsAndDecodingWorks() {
        let params = QueryParameters("symbol=XAU%55SD&symbol=EURUSD&a+b=c+d&broken=%zz")
        #expect(params["symbol"] == "XAUUSD")
        #expect(params["a b"] == "c d")
        #expect(params["broken"] == "\u{FFFD}")
    }

    @Test func logsQueryDefaultsAndLimits() throws {
        func logs(_ query: String, context: ParameterContext = .test) throws(APIError) -> ReconciliationLogsView.Query {
            try ReconciliationLogsView.parameters(query: QueryParameters(query), pathSegment: nil, context: context)
        }
        #expect(try logs("") == .init(hours: 1, limit: 100))
        #expect(throws: APIError.badRequest("limit must be a whole number from 1 to 500")) { try logs("limit=501") }
    }

    @Test func logCursorsAreBoundToTheirUserAndCannotBeForged() throws {
        func logs(_ query: String, context: ParameterContext = .test) throws(APIError) -> ReconciliationLogsView.Query {
            try ReconciliationLogsView.parameters(query: QueryParameters(query), pathSegment: nil, context: context)
        }
        let position = LogCursor(createdAt: Timestamp(microseconds: 1_761_482_096_123_456), id: "0b8f6a52-1a7b-4c59-9a34-7d6a3e2f1c00")
        let cursor = ParameterContext.test.cursors.encode(position, for: ParameterContext.test.user)
        #expect(try logs("hours=2&cursor=\(cursor)") == .init(hours: 2, limit: 100, after: position))
        let mallory = ParameterContext(user: UserID("00000000-0000-4000-8000-000000000002")!, cursors: ParameterContext.test.cursors)
        let otherKey = ParameterContext(user: ParameterContext.test.user, cursors: CursorCodec(secret: String(repeating: "x", count: 40)))
        var edited = Array(cursor.utf8)
        edited[3] = edited[3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        for (query, context) in [("cursor=\(cursor)", mallory), ("cursor=\(cursor)", otherKey),
                                 ("cursor=\(String(decoding: edited, as: UTF8.self))", .test), ("cursor=", .test),
                                 ("cursor=abc.def", .test), ("cursor=\(cursor).x", .test)] {
            #expect(throws: APIError.badRequest("cursor is not one this service issued to this user"), "\(query)") {
                try logs(query, context: context)
            }
        }
    }

    @Test func symbolFilterFollowsThePattern() throws {
        func symbolFilter(_ query: String) throws(APIError) -> String? {
            try OpenPositionsView.parameters(query: QueryParameters(query), pathSegment: nil, context: .test)
        }
        #expect(try symbolFilter("symbol=XAUUSD") == "XAUUSD")
        #expect(try symbolFilter("symbol=BRK.B_1") == "BRK.B_1")
        #expect(try symbolFilter("other=1") == nil)
        for bad in ["xauusd", "", "X%20Y", "ABCDEFGHIJKLMNOPQRSTU", "X'--", "%00"] {
            #expect(throws: APIError.badRequest("symbol must match ^[A-Z0-9._]{1,20}$"), "\(bad)") {
                try symbolFilter("symbol=\(bad)")
            }
        }
    }

    @Test func ticketMustBeNumeric() throws {
        func ticket(_ segment: Substring?) throws(APIError) -> Int64 {
            try PositionView.parameters(query: QueryParameters(""), pathSegment: segment, context: .test)
        }
        #expect(try ticket("12345") == 12345)
        #expect(try ticket("9223372036854775807") == Int64.max)
        for bad: Substring? in ["abc", "-1", "1.0", "0x10", "9999999999999999999", "{ticket}", nil] {
            #expect(throws: APIError.badRequest("ticket must be a whole number"), "\(String(describing: bad))") { try ticket(bad) }
        }
    }

    @Test func cacheKeysSeparateUsersViewsAndParameters() throws {
        let alice = UserID("00000000-0000-4000-8000-000000000001")!
        let bob = UserID("00000000-0000-4000-8000-000000000002")!
        let now = Timestamp(microseconds: 0)
        let requests: [(any Endpoint.Type, Substring?, String)] = [
            (ReconciliationStatusView.self, nil, ""), (GuardsStatusView.self, nil, ""),
            (OpenPositionsView.self, nil, ""), (OpenPositionsView.self, nil, "symbol=XAUUSD"),
            (PositionView.self, "1", ""), (ReconciliationLogsView.self, nil, "hours=1&limit=100"),
            (ReconciliationLogsView.self, nil, "hours=2&limit=100"),
        ]
        let keys = try [alice, bob].flatMap { user in
            try requests.map { endpoint, segment, query in
                try ViewRequest(endpoint, pathSegment: segment, query: query,
                                context: ParameterContext(user: user, cursors: ParameterContext.test.cursors), now: now).cacheKey
            }
        }
        #expect(Set(keys).count == keys.count)
        #expect(keys.allSatisfy { $0.utf8.count <= 250 && !$0.contains(" ") })
    }
}

extension ParameterContext {
    static let test = ParameterContext(user: UserID("3f2c8a1e-9b7d-4c6e-8a5f-1d2e3c4b5a69")!, cursors: CursorCodec(secret: TokenFactory.secret))
}
