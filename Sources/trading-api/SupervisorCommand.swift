#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import Logging
import Memcached
import Postgres
import TradingAPI
import WorkerPool

/// Opens the FastCGI socket (or takes the one on fd 0) and runs the static worker pool until SIGTERM/SIGINT; beside it, on
/// its own thread, the change listener that keeps the cache fresh (when caching is on).
struct SupervisorCommand {
    let configuration: ServiceConfiguration

    func run() -> Int32 {
        let logger = Logger.bootstrap(role: "supervisor", level: configuration.logLevel)
        let listenFD: Int32
        let stopLatch: StopLatch
        do {
            if let inherited = FastCGISocket.inherited(descriptor: 0) {
                // Started with the socket on fd 0 (systemd's trading-api.socket, FastCGI's
                // FCGI_LISTENSOCK_FILENO): it is the starter's; FCGI_SOCKET is not opened.
                listenFD = inherited
                logger.info("serving the listening socket inherited on fd 0")
            } else {
                listenFD = try FastCGISocket.open(
                    address: configuration.fastCGISocket, backlog: 1024,
                    permissions: .init(mode: 0o660, group: configuration.fastCGISocketGroup))
            }
            stopLatch = try StopLatch()
        } catch {
            logger.critical("cannot open the FastCGI socket", metadata: ["error": "\(error)"])
            return 71  // EX_OSERR
        }
        let scoreboard: Scoreboard
        do {
            scoreboard = try Scoreboard.create(
                layout: ServiceMetrics.scoreboardLayout(workers: configuration.workers, loops: configuration.requestLoops),
                startedAt: time(nil))
        } catch {
            logger.critical("cannot create the scoreboard", metadata: ["error": "\(error)"])
            return 71
        }
        let pool = WorkerPoolConfiguration(
            executablePath: Self.ownExecutable(), arguments: ["worker"], workerCount: configuration.workers,
            listenFD: listenFD, scoreboard: scoreboard,
            // New workers read the configuration again (JWT_KEYS_FILE): check it before replacing any.
            reloadCheck: {
                do {
                    _ = try ServiceConfiguration.fromEnvironment(ProcessEnvironment.current)
                    return nil
                } catch {
                    return "\(error)"
                }
            })
        logger.info("starting pool", metadata: [
            "socket": "\(listenFD == 0 ? "fd 0" : configuration.fastCGISocket)", "workers": "\(configuration.workers)",
            "max_requests": "\(configuration.maxRequests)", "cache_ttl_seconds": "\(configuration.cacheTTLSeconds)",
        ])
        let listener = startChangeListener(until: stopLatch, scoreboard: scoreboard, logger: logger)
        let exitCode = Supervisor(configuration: pool, logger: logger).run()
        stopLatch.trip()
        listener?.join()
        return exitCode
    }

    /// The thread that replaces users' cache generations after their commits (`ChangeListener`);
    /// `nil` when caching is off or the thread cannot start (then views are fresh only by TTL).
    private func startChangeListener(until stopLatch: StopLatch, scoreboard: Scoreboard, logger: Logger) -> JoinableThread? {
        guard configuration.cacheTTLSeconds > 0 else { return nil }
        let configuration = configuration
        do {
            return try Supervisor.withSignalsBlocked { () throws(JoinableThread.StartError) in
                try JoinableThread {
                    let cache: MemcachedClient
                    do {
                        cache = try MemcachedClient(configuration: .init(
                            servers: configuration.memcachedServers, timeoutMilliseconds: configuration.memcachedTimeoutMilliseconds))
                    } catch {
                        logger.error("change listener has no memcached client; every view is answered uncached",
                                     metadata: ["error": "\(error)"])
                        return
                    }
                    let database = PostgresConnection.Configuration(
                        url: configuration.databaseURL, connectTimeoutSeconds: configuration.databaseConnectTimeoutSeconds,
                        applicationName: "trading-api supervisor change listener")
                    var live: LivePublisher?
                    if let socket = configuration.nchanPublishSocket {
                        do {
                            var liveDatabase = database
                            liveDatabase.applicationName = "trading-api supervisor live publisher"
                            // Its queries run on the listener's thread: an unreachable Postgres
                            // must not hold that thread for TCP's minutes.
                            liveDatabase.tcpUserTimeoutMilliseconds = PostgresListener.deadPeerMilliseconds
                            live = try LivePublisher(publisher: socket, database: liveDatabase, logger: logger)
                        } catch {
                            logger.error("no live stream publisher; streams get no events", metadata: ["error": "\(error)"])
                        }
                    }
                    do {
                        try ChangeListener(database: database, cache: cache, metrics: scoreboard.supervisorWords, live: live,
                                           stampsWALPosition: configuration.databaseReadURL != nil, logger: logger)
                            .run(until: stopLatch)
                    } catch {
                        logger.error("change listener cannot place the cache epoch; every view is answered uncached",
                                     metadata: ["error": "\(error)"])
                    }
                }
            }
        } catch {
            logger.error("cannot start the change listener; cached views go stale until their TTL", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The running binary, resolved once so that SIGHUP after a deploy starts the new file.
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension StopLatch: StopSignal {}
