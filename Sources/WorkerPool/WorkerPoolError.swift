#if canImport(Glibc)
import Glibc
#endif

/// What went wrong in the pool's own plumbing, with the errno that explains it.
public enum WorkerPoolError: Error, Sendable, Equatable {
    case cannotSpawnWorker(executablePath: String, errno: Int32)
    case cannotCreateWakeupPipe(errno: Int32)
    case cannotInstallSignalHandler(signal: Int32, errno: Int32)
}

extension WorkerPoolError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .cannotSpawnWorker(let path, let errno):
            return "cannot start worker '\(path)': \(errorString(errno))"
        case .cannotCreateWakeupPipe(let errno):
            return "cannot create the supervisor's wake-up pipe: \(errorString(errno))"
        case .cannotInstallSignalHandler(let signal, let errno):
            return "cannot install a handler for \(signalName(signal)): \(errorString(errno))"
        }
    }
}

func errorString(_ code: Int32) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}
