#if canImport(Glibc)
import Glibc
#endif

/// A snapshot of the pool for a status page.
public struct PoolStatus: Sendable {
    public struct Worker: Sendable {
        public var slot: Int
        /// `nil` while the slot waits out a restart delay.
        public var pid: pid_t?
        /// When the current worker started, in seconds since the Unix epoch.
        public var startedAtEpochSeconds: Int?
        /// How often this slot's worker was replaced: crashes, recycling and reloads.
        public var restarts: Int
        /// How the slot's previous worker ended.
        public var lastExit: WorkerExit?
    }

    public var supervisorPID: pid_t
    public var workers: [Worker]
    public var isStopping: Bool
}
