#if canImport(Glibc)
import Glibc
#endif

/// How a worker process ended, decoded from a `waitpid` status.
public enum WorkerExit: Sendable, Equatable, CustomStringConvertible {
    case exited(code: Int32)
    case killed(signal: Int32, coreDumped: Bool)
    /// `waitpid` answered `ECHILD`: someone else reaped the process and its status is lost.
    /// Never taken for a clean exit.
    case statusLost

    /// Decodes what the `WIFEXITED`/`WTERMSIG` macros (which Swift cannot import) would say.
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited(code: (status >> 8) & 0xff)
        } else {
            self = .killed(signal: signal, coreDumped: status & 0x80 != 0)
        }
    }

    public var description: String {
        switch self {
        case .exited(let code):
            return "exited with status \(code)"
        case .killed(let signal, let coreDumped):
            return "killed by \(signalName(signal))" + (coreDumped ? " (core dumped)" : "")
        case .statusLost:
            return "ended with its status lost (reaped elsewhere: ECHILD)"
        }
    }
}

/// `SIGTERM` and friends by name, for log lines a person reads.
func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGTRAP: "SIGTRAP"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGUSR1: "SIGUSR1"
    case SIGSEGV: "SIGSEGV"
    case SIGUSR2: "SIGUSR2"
    case SIGPIPE: "SIGPIPE"
    case SIGALRM: "SIGALRM"
    case SIGTERM: "SIGTERM"
    case SIGCHLD: "SIGCHLD"
    case SIGXCPU: "SIGXCPU"
    case SIGXFSZ: "SIGXFSZ"
    case SIGSYS: "SIGSYS"
    default: "signal \(signal)"
    }
}
