#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import Logging
import TradingAPI
import WorkerPool

/// One worker process: `FCGI_LOOPS` request loops on their own threads, all accepting on fd 0,
/// until told to stop or until the worker has served `MAX_REQUESTS` (then it exits 0 and the
/// supervisor starts a fresh one). The main thread only waits for the stop and joins the loops.
struct WorkerCommand {
    let configuration: ServiceConfiguration

    func run() -> Int32 {
        let stopLatch: StopLatch
        do {
            stopLatch = try StopLatch()
        } catch {
            printError("trading-api worker: \(error)")
            return 71  // EX_OSERR
        }
        // Before FCGX_Init, so libfcgi leaves SIGTERM to us (WorkerLifecycle explains the order).
        WorkerLifecycle.installStopHandlers(notifying: stopLatch.writeDescriptor)
        WorkerLifecycle.stopWhenSupervisorDies()
        var logger = Logger.bootstrap(role: "worker", level: configuration.logLevel)
        logger[metadataKey: "pid"] = "\(getpid())"
        if let slot = WorkerLifecycle.slot { logger[metadataKey: "slot"] = "\(slot)" }
        let connections: KeptConnections
        do {
            try FastCGIResponder.initializeLibrary()
            connections = try KeptConnections(listenFD: 0)
        } catch {
            logger.critical("cannot serve FastCGI on fd 0", metadata: ["error": "\(error)"])
            return 71
        }

        let (scoreboard, entry) = attachScoreboard(logger: logger)
        let loops = RequestLoops(configuration: configuration, stopLatch: stopLatch, connections: connections,
                                 scoreboard: scoreboard, entry: entry, logger: logger)
        var threads: [JoinableThread] = []
        WorkerLifecycle.withStopSignalsBlocked {
            for index in 0..<configuration.requestLoops {
                do {
                    threads.append(try JoinableThread { loops.run(loop: index) })
                } catch {
                    loops.fail(exitCode: 71, "cannot start request loop \(index)", error: error)
                    break
                }
            }
        }
        stopLatch.waitUntilTripped()
        for thread in threads {
            thread.join()
        }
        logger.debug("worker exiting", metadata: ["served": "\(loops.served)"])
        return loops.exitCode
    }

    /// The pool's scoreboard and this worker's entry in it; a worker started by hand (tests, the
    /// profiler) makes one of its own, so it counts and reports exactly as in the pool.
    private func attachScoreboard(logger: Logger) -> (Scoreboard?, Int?) {
        do {
            if let entry = WorkerLifecycle.scoreboardEntry {
                return (try Scoreboard.attach(descriptor: ScoreboardLayout.workerDescriptor), entry)
            }
            let own = try Scoreboard.create(
                layout: ServiceMetrics.scoreboardLayout(workers: 1, loops: configuration.requestLoops), startedAt: time(nil))
            own.entry(0).fields.store(Scoreboard.EntryField.pid.rawValue, UInt64(getpid()))
            return (own, 0)
        } catch {
            logger.error("running without a scoreboard: no metrics", metadata: ["error": "\(error)"])
            return (nil, nil)
        }
    }
}
