#if canImport(Glibc)
import Glibc
#endif

/// Starts worker processes: `posix_spawn` of the configured binary, never a fork that keeps running Swift.
///
/// A worker starts with the listening socket on fd 0, the supervisor's stdout and stderr, the
/// scoreboard (when the pool has one) on fd 3 (`ScoreboardLayout.workerDescriptor`), no other
/// descriptors, an empty signal mask and every signal at its default disposition (whatever the
/// supervisor blocks or ignores), and the supervisor's environment plus the configured additions,
/// `WORKERPOOL_SUPERVISOR_PID`, `WORKERPOOL_SLOT` and `WORKERPOOL_SCOREBOARD_ENTRY`.
struct WorkerSpawner {
    private let executablePath: String
    private let argv: [String]
    private let baseEnvironment: [String]
    private let listenFD: Int32
    private let scoreboardFD: Int32?

    init(configuration: WorkerPoolConfiguration, supervisorPID: pid_t) {
        executablePath = configuration.executablePath
        argv = [configuration.executablePath] + configuration.arguments
        listenFD = configuration.listenFD
        scoreboardFD = configuration.scoreboard?.descriptor

        var replaced = Set(configuration.environment.keys)
        replaced.insert(WorkerLifecycle.supervisorPIDVariable)
        replaced.insert(WorkerLifecycle.slotVariable)
        replaced.insert(WorkerLifecycle.scoreboardEntryVariable)
        var environment = Self.currentEnvironment().filter { entry in
            let name = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            return !replaced.contains(name)
        }
        environment += configuration.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        environment.append("\(WorkerLifecycle.supervisorPIDVariable)=\(supervisorPID)")
        baseEnvironment = environment

        // dup2 onto the same number leaves close-on-exec set, so fd 0 must not carry it.
        if listenFD == 0 {
            _ = fcntl(0, F_SETFD, 0)
        }
    }

    /// Starts a worker for `slot` that writes to scoreboard entry `entry` (when there is one).
    func spawn(slot: Int, entry: Int?) throws(WorkerPoolError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, listenFD, 0)
        var lowestToClose: Int32 = 3
        if let scoreboardFD {
            // dup2 clears close-on-exec on the copy; the supervisor's own stays close-on-exec.
            posix_spawn_file_actions_adddup2(&actions, scoreboardFD, ScoreboardLayout.workerDescriptor)
            lowestToClose = ScoreboardLayout.workerDescriptor + 1
        }
        _ = GlibcExtensions.closeDescriptors(from: lowestToClose, in: &actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = baseEnvironment + ["\(WorkerLifecycle.slotVariable)=\(slot)"]
        if let entry { environment.append("\(WorkerLifecycle.scoreboardEntryVariable)=\(entry)") }
        var pid = pid_t()
        let result = Self.withCStringArray(argv) { argvPointer in
            Self.withCStringArray(environment) { environmentPointer in
                posix_spawn(&pid, executablePath, &actions, &attributes, argvPointer, environmentPointer)
            }
        }
        guard result == 0 else {
            throw .cannotSpawnWorker(executablePath: executablePath, errno: result)
        }
        return pid
    }

    private static func currentEnvironment() -> [String] {
        var entries: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            entries.append(String(cString: pointer))
            entry += 1
        }
        return entries
    }

    private static func withCStringArray<Result>(
        _ strings: [String],
        _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result
    ) -> Result {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
