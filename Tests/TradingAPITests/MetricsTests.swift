import Logging
import Postgres
import Testing
import WorkerPool
@testable import TradingAPI

@Suite struct MetricsTests {
    private func scoreboard(loops: Int = 2) throws -> Scoreboard {
        try Scoreboard.create(layout: MetricsLayout.scoreboardLayout(workers: 1, loops: loops), startedAt: 1_796_000_000)
    }

    @Test func everyRouteHasALabelAndItsOwnIndex() {
        let routes: [Route] = [.health, .operations(.metrics), .operations(.status), .stream, .session]
            + Endpoints.all.map { .view($0, pathSegment: nil) } + WriteEndpoints.all.map { .write($0) }
        let indexes = routes.map(Router.metricsIndex(of:))
        #expect(Set(indexes).count == routes.count)
        #expect(indexes.allSatisfy { $0 < MetricsLayout.unmatchedRoute })
        #expect(MetricsLayout.routes[Router.metricsIndex(of: .view(PositionView.self, pathSegment: "7"))] == "/api/v1/positions/{ticket}")
        #expect(MetricsLayout.routes[Router.metricsIndex(of: .operations(.status))] == "/status")
        #expect(MetricsLayout.routes[Router.metricsIndex(of: .stream)] == "/api/v1/stream")
    }

    @Test func theOperationsPagesAreRoutedOutsideTheAPI() throws {
        #expect(try Router.route(method: "GET", path: "/metrics") == .operations(.metrics))
        #expect(try Router.route(method: "GET", path: "/status") == .operations(.status))
        #expect(throws: APIError.methodNotAllowed(allowed: ["GET", "HEAD"])) { try Router.route(method: "POST", path: "/metrics") }
        #expect(throws: APIError.notFound("no such endpoint")) { try Router.route(method: "GET", path: "/metrics/") }
    }

    @Test func aDurationFallsInTheFirstBucketThatHoldsIt() throws {
        let words = try scoreboard().retiredCounters
        DurationBuckets.record(500, into: words, at: 0)        // le 0.0005
        DurationBuckets.record(501, into: words, at: 0)        // le 0.001
        DurationBuckets.record(20_000_000, into: words, at: 0) // over 10 s
        #expect(words.load(0) == 1)
        #expect(words.load(1) == 1)
        #expect(words.load(DurationBuckets.bounds.count) == 1)
        #expect(words.load(DurationBuckets.bounds.count + 1) == 20_001_001)
    }

    @Test func histogramTextIsCumulativeWithSumAndCount() {
        var words = [UInt64](repeating: 0, count: DurationBuckets.words)
        words[0] = 2; words[2] = 1; words[DurationBuckets.bounds.count] = 1
        words[DurationBuckets.bounds.count + 1] = 12_002_500
        var bytes: [UInt8] = []
        HistogramText(name: "x_seconds", help: "h", labels: [("route", "/a\"b")], words: words, base: 0).append(to: &bytes)
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines[0] == "# HELP x_seconds h")
        #expect(lines[1] == "# TYPE x_seconds histogram")
        #expect(lines[2] == #"x_seconds_bucket{route="/a\"b",le="0.0005"} 2"#)
        #expect(lines[4] == #"x_seconds_bucket{route="/a\"b",le="0.0025"} 3"#)
        #expect(lines[15] == #"x_seconds_bucket{route="/a\"b",le="10"} 3"#)
        #expect(lines[16] == #"x_seconds_bucket{route="/a\"b",le="+Inf"} 4"#)
        #expect(lines[17] == #"x_seconds_sum{route="/a\"b"} 12.0025"#)
        #expect(lines[18] == #"x_seconds_count{route="/a\"b"} 4"#)
    }

    @Test func aLoopsActivityReadsBackAndClears() throws {
        let board = try scoreboard()
        let activity = LoopActivity(live: board.entry(0).live, loop: 1)
        #expect(activity.read() == nil)
        activity.begin(method: "GET", path: "/api/v1/positions/" + String(repeating: "9", count: 200),
                       requestID: "0123456789abcdef0123456789abcdef", startedAt: 1_796_000_000_123_456)
        activity.enter(.query)
        let request = try #require(activity.read())
        #expect(request.method == "GET")
        #expect(request.path.utf8.count == LoopActivity.pathBytes)  // cut to its field
        #expect(request.requestID == "0123456789abcdef0123456789abcdef")
        #expect(request.startedAt == 1_796_000_000_123_456)
        #expect(request.phase == .query)
        #expect(LoopActivity(live: board.entry(0).live, loop: 0).read() == nil)  // its neighbour is untouched
        activity.end()
        #expect(activity.read() == nil)

        // A shorter request after a longer one: only its own text, whatever word it ends in.
        for path in ["/api/v1/health", "/api/v1/x", "/api/v1/logs?h", ""] {
            activity.begin(method: "POST", path: path, requestID: "short", startedAt: 1)
            let next = try #require(activity.read())
            #expect(next.path == path && next.method == "POST" && next.requestID == "short")
        }
    }

    @Test func aTraceSplitsAViewsTimeIntoQueryAndRender() {
        var trace = RequestTrace(activity: nil)
        trace.enter(.query)
        let spin = ContinuousClock.now
        while ContinuousClock.now - spin < .milliseconds(3) {}
        trace.enter(.cache)
        let inQuery = trace.microseconds(in: .query)
        trace.splitQuery(databaseMicroseconds: 1000)
        #expect(trace.microseconds(in: .query) == 1000)
        #expect(trace.microseconds(in: .render) == inQuery - 1000)
        #expect(trace.finish() >= inQuery)
    }

    @Test func nginxsStartTimeGivesTheQueueWait() {
        #expect(APIRequest.microseconds(fromNginxMsec: "1796000000.123") == 1_796_000_000_123_000)
        for bad in ["", "1796000000", "1796000000.12", "-1.000", "x.123", "1.1234"] {
            #expect(APIRequest.microseconds(fromNginxMsec: bad) == nil, "\(bad)")
        }
        var request = APIRequest(method: "GET", path: "/", query: "", authorization: nil, requestID: "r")
        #expect(request.queueWaitMicroseconds(now: Timestamp(microseconds: 5)) == nil)
        request.startedByNginxAt = 1_000_000
        #expect(request.queueWaitMicroseconds(now: Timestamp(microseconds: 1_002_500)) == 2_500)
        #expect(request.queueWaitMicroseconds(now: Timestamp(microseconds: 999_000)) == 0)  // clocks never run backwards here
    }

    @Test func changeNotificationsCarryTheirStatementsTime() {
        let user = "00000000-0000-4000-8000-000000000001"
        func parse(_ payload: String) -> (ChangeListener.Change.Scope, Int64?) {
            let change = ChangeListener.Change(payload: payload)
            return (change.scope, change.writtenAt)
        }
        #expect(parse("\(user) 1796000000123456") == (.user(UserID(user)!), 1_796_000_000_123_456))
        #expect(parse(user) == (.user(UserID(user)!), nil))  // before migration 006
        #expect(parse("* 17") == (.everyone, 17))
        #expect(parse("nonsense") == (.unknown, nil))
    }

    @Test func requestsAreCountedByRouteAndStatusAndTheMetricsPageShowsThem() throws {
        let board = try scoreboard()
        board.entry(0).fields.store(Scoreboard.EntryField.pid.rawValue, 4242)
        let instruments = RequestInstruments(scoreboard: board, entry: 0, loop: 1, slowRequestMilliseconds: 0,
                                             listenQueue: { (depth: 3, limit: 1024) })
        let service = TradingService(
            database: PostgresConnection(configuration: .init(url: "postgresql://127.0.0.1:1/none")),
            cache: .uncached(),
            secret: String(repeating: "s", count: 32), logger: Logger(label: "test"), instruments: instruments,
            clock: { 1_796_000_100 })
        func get(_ path: String, authorization: String? = nil) -> APIResponse {
            service.handle(APIRequest(method: "GET", path: path, query: "", authorization: authorization, requestID: "r"))
        }
        #expect(get("/api/v1/positions/open").status == 401)
        #expect(get("/api/v1/positions/open", authorization: "Bearer x.y.z").status == 401)
        #expect(get("/nope").status == 404)

        let page = get("/metrics")
        #expect(page.status == 200)
        #expect(page.contentType == "text/plain; version=0.0.4; charset=utf-8")
        let text = String(decoding: page.body, as: UTF8.self)
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"trading_api_requests_total{route="/api/v1/positions/open",code="401"} 2"#))
        #expect(lines.contains(#"trading_api_requests_total{route="unmatched",code="404"} 1"#))
        #expect(lines.contains(#"trading_api_token_rejections_total{reason="missing"} 1"#))
        #expect(lines.contains(#"trading_api_token_rejections_total{reason="malformed"} 1"#))
        #expect(lines.contains("trading_api_fastcgi_listen_queue 3.0"))
        #expect(lines.contains("trading_api_pool_start_time_seconds 1796000000.0"))
        #expect(lines.contains(#"trading_api_request_loops{state="busy"} 1.0"#))  // this scrape
        #expect(lines.contains(#"trading_api_request_duration_seconds_count{route="/api/v1/positions/open"} 2"#))
        #expect(!text.contains(#"route="/api/v1/guards/status""#))  // no requests, no series

        let status = get("/status")
        #expect(status.contentType.hasPrefix("text/plain"))
        let statusText = String(decoding: status.body, as: UTF8.self)
        #expect(statusText.contains("accepted conn:       4\n"))
        #expect(statusText.contains("pid:                 4242\n"))
        #expect(statusText.contains("request URI:         /status\n"))
        #expect(statusText.contains("start since:         100\n"))
    }

    @Test func withoutAScoreboardTheOperationsPagesAreUnavailable() {
        let service = TradingService(
            database: PostgresConnection(configuration: .init(url: "postgresql://127.0.0.1:1/none")),
            cache: .uncached(),
            secret: String(repeating: "s", count: 32), logger: Logger(label: "test"))
        let response = service.handle(APIRequest(method: "GET", path: "/metrics", query: "", authorization: nil, requestID: "r"))
        #expect(response.status == 503)
    }
}
