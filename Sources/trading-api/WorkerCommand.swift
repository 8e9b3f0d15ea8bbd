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

        // The pool's scoreboard; a worker started by hand runs without one (no metrics, no status page).
        var scoreboard: Scoreboard?
        if WorkerLifecycle.scoreboardEntry != nil {
            do {
                scoreboard = try Scoreboard.attach(descriptor: ScoreboardLayout.workerDescriptor)
            } catch {
                logger.error("running without the scoreboard", metadata: ["error": "\(error)"])
            }
        }
        let loops = RequestLoops(configuration: configuration, stopLatch: stopLatch, connections: connections,
                                 scoreboard: scoreboard, logger: logger)
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
}
