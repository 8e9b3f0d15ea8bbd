import Testing
@testable import TradingAPI

@Suite struct RoutingTests {
    @Test func matchesEveryEndpoint() throws {
        #expect(try Router.route(method: "GET", path: "/api/v1/health") == .health)
        #expect(try Router.route(method: "GET", path: "/api/v1/reconciliation/status") == .reconciliationStatus)
        #expect(try Router.route(method: "GET", path: "/api/v1/reconciliation/logs") == .reconciliationLogs)
        #expect(try Router.route(method: "GET", path: "/api/v1/positions/open") == .openPositions)
        #expect(try Router.route(method: "GET", path: "/api/v1/positions/12345") == .position(ticket: "12345"))
        #expect(try Router.route(method: "GET", path: "/api/v1/guards/status") == .guardsStatus)
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
        #expect(try ReconciliationLogsView.Query(QueryParameters("")) == .init(hours: 1, limit: 100))
        #expect(throws: APIError.badRequest("limit must be a whole number from 1 to 500")) {
            try ReconciliationLogsView.Query(QueryParameters("limit=501"))
        }
    }

    @Test func symbolFilterFollowsThePattern() throws {
        #expect(try PositionsView.symbolFilter(QueryParameters("symbol=XAUUSD")) == "XAUUSD")
        #expect(try PositionsView.symbolFilter(QueryParameters("symbol=BRK.B_1")) == "BRK.B_1")
        #expect(try PositionsView.symbolFilter(QueryParameters("other=1")) == nil)
        for bad in ["xauusd", "", "X%20Y", "ABCDEFGHIJKLMNOPQRSTU", "X'--", "%00"] {
            #expect(throws: APIError.badRequest("symbol must match ^[A-Z0-9._]{1,20}$"), "\(bad)") {
                try PositionsView.symbolFilter(QueryParameters("symbol=\(bad)"))
            }
        }
    }

    @Test func ticketMustBeNumeric() throws {
        #expect(try PositionsView.ticket("12345") == 12345)
        #expect(try PositionsView.ticket("9223372036854775807") == Int64.max)
        for bad in ["abc", "-1", "1.0", "0x10", "9999999999999999999"] {
            #expect(throws: APIError.badRequest("ticket must be a whole number"), "\(bad)") { try PositionsView.ticket(Substring(bad)) }
        }
    }

    @Test func cacheKeysSeparateUsersViewsAndParameters() {
        let alice = UserID("00000000-0000-4000-8000-000000000001")!
        let bob = UserID("00000000-0000-4000-8000-000000000002")!
        let views: [ViewRequest] = [.reconciliationStatus, .guardsStatus, .openPositions(symbol: nil), .openPositions(symbol: "XAUUSD"),
                                    .position(ticket: 1), .reconciliationLogs(.init(hours: 1, limit: 100)),
                                    .reconciliationLogs(.init(hours: 2, limit: 100))]
        let keys = [alice, bob].flatMap { user in views.map { $0.cacheKey(user: user) } }
        #expect(Set(keys).count == keys.count)
        #expect(keys.allSatisfy { $0.utf8.count <= 250 && !$0.contains(" ") })
    }
}
