import FastCGI
import Logging
import Memcached
import Postgres
import Synchronization
import TradingAPI
import WorkerPool

#if canImport(Glibc)
import Glibc
#endif

/// What the request loops of one worker process share, and the loop itself.
///
/// Everything here is immutable, atomic or Sendable by its own locks, so it is `Sendable` as it
/// stands. Each loop builds its own `FastCGIResponder`, `TradingService`, Postgres connection and memcached client inside its
/// thread: none of them is `Sendable`, and the `@Sendable` closure that starts a loop cannot
/// capture them, so the compiler proves they never cross threads.
final class RequestLoops: Sendable {
    let configuration: ServiceConfiguration
    let stopLatch: StopLatch
    /// The connections nginx keeps alive, shared by the loops: a request goes to whichever is free.
    let connections: KeptConnections
    let scoreboard: Scoreboard?
    /// This worker's entry in `scoreboard`.
    let scoreboardEntry: Int?
    let logger: Logger
    private let servedRequests = Atomic<Int>(0)
    private let failureExitCode = Atomic<Int32>(0)

    init(configuration: ServiceConfiguration, stopLatch: StopLatch, connections: KeptConnections, scoreboard: Scoreboard?,
         entry: Int?, logger: Logger) {
        self.scoreboardEntry = entry
        self.configuration = configuration
        self.stopLatch = stopLatch
        self.connections = connections
        self.scoreboard = scoreboard
        self.logger = logger
    }

    /// Requests served by all loops so far.
    var served: Int { servedRequests.load(ordering: .relaxed) }

    /// 0 after a stop or recycling; otherwise the code of the first failure. Non-zero tells the
    /// supervisor to back off before replacing the worker.
    var exitCode: Int32 { failureExitCode.load(ordering: .acquiring) }

    /// Records a failure that ends the worker, and stops every loop.
    func fail(exitCode: Int32, _ message: Logger.Message, error: any Error) {
        logger.critical(message, metadata: ["error": "\(error)"])
        _ = failureExitCode.compareExchange(expected: 0, desired: exitCode, ordering: .acquiringAndReleasing)
        stopLatch.trip()
    }

    /// Serves requests until the latch is tripped; trips it itself when the worker has served
    /// `MAX_REQUESTS` (the other loops finish what they hold, so a worker may serve up to
    /// `FCGI_LOOPS - 1` more).
    func run(loop index: Int) {
        var logger = logger
        logger[metadataKey: "loop"] = "\(index)"
        let service = makeService(loop: index, logger: logger)
        let responder: FastCGIResponder
        do {
            responder = try FastCGIResponder(connections: connections, stopLatch: stopLatch)
        } catch {
            fail(exitCode: 71, "cannot serve FastCGI on fd 0", error: error)
            return
        }
        do {
            while let request = try responder.accept() {
                let response = service.handle(APIRequest(cgiParameter: request.param, readBody: request.readBody(limit:)))
                var headers = [("Content-Type", response.contentType)]
                headers.append(contentsOf: response.headers)
                request.respond(status: response.status, headers: headers, body: response.body)
                let served = servedRequests.add(1, ordering: .relaxed).newValue
                if configuration.maxRequests > 0 && served >= configuration.maxRequests {
                    stopLatch.trip()
                }
            }
        } catch {
            fail(exitCode: 1, "accept failed", error: error)
        }
    }

    private func makeService(loop index: Int, logger: Logger) -> TradingService {
        let database = PostgresConnection(configuration: .init(
            url: configuration.databaseURL, connectTimeoutSeconds: configuration.databaseConnectTimeoutSeconds,
            statementTimeoutMilliseconds: configuration.statementTimeoutMilliseconds,
            applicationName: "trading-api worker \(getpid()) loop \(index)"))
        var cache = ResponseCache.uncached()
        if configuration.cacheTTLSeconds > 0 {
            do {
                let client = try MemcachedClient(configuration: .init(
                    servers: configuration.memcachedServers, timeoutMilliseconds: configuration.memcachedTimeoutMilliseconds))
                cache = try ResponseCache(client: client, ttlSeconds: configuration.cacheTTLSeconds) { milliseconds in
                    usleep(useconds_t(milliseconds * 1000))
                }
            } catch {
                logger.error("memcached client not created; serving uncached", metadata: ["error": "\(error)"])
            }
        }
        let instruments = RequestInstruments(
            scoreboard: scoreboard, entry: scoreboardEntry, loop: index,
            slowRequestMilliseconds: configuration.slowRequestMilliseconds,
            listenQueue: { AcceptQueue.of(0).map { (depth: $0.depth, limit: $0.limit) } })
        var probe: StreamProbe?
        if let socket = configuration.nchanPublishSocket {
            do {
                probe = try StreamProbe(publisher: socket)
            } catch {
                logger.error("no live stream in this loop", metadata: ["error": "\(error)"])
            }
        }
        let replica = configuration.databaseReadURL.map { url in
            ReadReplica(connection: PostgresConnection(configuration: .init(
                url: url, connectTimeoutSeconds: configuration.databaseConnectTimeoutSeconds,
                statementTimeoutMilliseconds: configuration.statementTimeoutMilliseconds,
                applicationName: "trading-api worker \(getpid()) loop \(index) replica",
                tcpUserTimeoutMilliseconds: ReadReplica.tcpUserTimeoutMilliseconds)),
                maximumLagMilliseconds: configuration.replicaMaximumLagMilliseconds)
        }
        return TradingService(database: database, replica: replica, cache: cache, keys: configuration.jwtKeys, logger: logger,
                              instruments: instruments, liveStream: probe)
    }
}
