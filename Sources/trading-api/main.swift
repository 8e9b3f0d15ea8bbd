// trading-api: the FastCGI worker pool of the trading account API.
//
//   trading-api          the supervisor: opens the FastCGI socket and keeps WORKERS workers
//   trading-api worker   one worker: serves requests from the socket on fd 0 (spawned by the supervisor)
//
// Configuration comes from the environment only; see README.md.

#if canImport(Glibc)
import Glibc
#endif
import TradingAPI

let arguments = CommandLine.arguments.dropFirst()
let configuration: ServiceConfiguration
do {
    configuration = try ServiceConfiguration.fromEnvironment(ProcessEnvironment.current)
} catch {
    printError("trading-api: \(error)")
    exit(78)  // EX_CONFIG
}

switch arguments.first {
case nil:
    exit(SupervisorCommand(configuration: configuration).run())
case "worker":
    exit(WorkerCommand(configuration: configuration).run())
default:
    printError("usage: trading-api [worker]")
    exit(64)  // EX_USAGE
}

/// Writes a line to stderr before logging is set up.
func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
