#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import Logging
import Memcached
import Postgres
import TradingAPI
import WorkerPool

/// One worker: accepts FastCGI requests on fd 0 and answers them with the trading service until
/// told to stop or after `MAX_REQUESTS` (then it exits 0 and the supervisor starts a fresh one).
struct WorkerCommand {
    let configuration: ServiceConfiguration

    func run() -> Int32 {
        WorkerLifecycle.installStopHandlers()
        WorkerLifecycle.stopWhenSupervisorDies()
        var logger = Logger.bootstrap(role: "worker", level: configuration.logLevel)
        logger[metadataKey: "pid"] = "\(getpid())"
        if let slot = WorkerLifecycle.slot { logger[metadataKey: "slot"] = "\(slot)" }

        let service = makeService(logger: logger)
        let responder: FastCGIResponder
        do {
            responder = try FastCGIResponder(listenFD: 0)
        } catch {
            logger.critical("cannot serve FastCGI on fd 0", metadata: ["error": "\(error)"])
            return 71
        }

        var served = 0
        while !WorkerLifecycle.shouldStop, configuration.maxRequests == 0 || served < configuration.maxRequests {
            guard let request = responder.accept() else {
                if WorkerLifecycle.shouldStop { break }
                logger.error("accept failed", metadata: ["errno": "\(responder.lastAcceptError)"])
                return 1  // not a recycling exit: the supervisor backs off before replacing us
            }
            // A stop signal waits until the answer is written: libfcgi's writes do not retry EINTR.
            WorkerLifecycle.deferringStop {
                let response = service.handle(APIRequest(cgiParameter: request.param))
                var headers = [("Content-Type", APIResponse.contentType)]
                headers.append(contentsOf: response.headers)
                request.respond(status: response.status, headers: headers, body: response.body)
            }
            served += 1
        }
        logger.debug("worker exiting", metadata: ["served": "\(served)"])
        return 0
    }

    private func makeService(logger: Logger) -> TradingService {
        let database = PostgresConnection(configuration: .init(
            url: configuration.databaseURL, connectTimeoutSeconds: configuration.databaseConnectTimeoutSeconds,
            statementTimeoutMilliseconds: configuration.statementTimeoutMilliseconds,
            applicationName: "trading-api worker \(getpid())"))
        var client: MemcachedClient?
        if configuration.cacheTTLSeconds > 0 {
            do {
                client = try MemcachedClient(configuration: .init(
                    servers: configuration.memcachedServers, timeoutMilliseconds: configuration.memcachedTimeoutMilliseconds))
            } catch {
                logger.error("memcached client not created; serving uncached", metadata: ["error": "\(error)"])
            }
        }
        let cache = ResponseCache(client: client, ttlSeconds: configuration.cacheTTLSeconds)
        return TradingService(database: database, cache: cache, verifier: JWTVerifier(secret: configuration.jwtSecret), logger: logger)
    }
}
