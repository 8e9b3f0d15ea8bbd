#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import Logging
import TradingAPI
import WorkerPool

/// Opens the FastCGI socket and runs the static worker pool until SIGTERM/SIGINT.
struct SupervisorCommand {
    let configuration: ServiceConfiguration

    func run() -> Int32 {
        let logger = Logger.bootstrap(role: "supervisor", level: configuration.logLevel)
        let listenFD: Int32
        do {
            listenFD = try FastCGISocket.open(
                address: configuration.fastCGISocket, backlog: 1024,
                permissions: .init(mode: 0o660, group: configuration.fastCGISocketGroup))
        } catch {
            logger.critical("cannot open the FastCGI socket", metadata: ["error": "\(error)"])
            return 71  // EX_OSERR
        }
        let pool = WorkerPoolConfiguration(
            executablePath: Self.ownExecutable(), arguments: ["worker"], workerCount: configuration.workers,
            listenFD: listenFD)
        logger.info("starting pool", metadata: [
            "socket": "\(configuration.fastCGISocket)", "workers": "\(configuration.workers)",
            "max_requests": "\(configuration.maxRequests)", "cache_ttl_seconds": "\(configuration.cacheTTLSeconds)",
        ])
        return Supervisor(configuration: pool, logger: logger).run()
    }

    /// The running binary, resolved once so that SIGHUP after a deploy starts the new file.
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
