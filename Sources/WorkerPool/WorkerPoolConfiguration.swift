#if canImport(Glibc)
import Glibc
#endif

/// What the supervisor runs and how it treats its workers.
public struct WorkerPoolConfiguration: Sendable {
    /// The worker binary, usually the supervisor's own (resolve `/proc/self/exe` once at start-up,
    /// so a reload after a deploy that replaced the file runs the new binary).
    public var executablePath: String
    /// Arguments after `argv[0]`, e.g. `["worker"]`.
    public var arguments: [String]
    /// Added to the supervisor's environment for every worker, replacing variables of the same name.
    public var environment: [String: String]
    public var workerCount: Int
    /// The listening socket; each worker receives it as fd 0 (`FCGI_LISTENSOCK_FILENO`).
    public var listenFD: Int32
    /// How long a worker may take to finish its request after SIGTERM before it gets SIGKILL.
    public var gracefulStopTimeout: Duration
    public var restartBackoff: RestartBackoff
    /// Shared counters and per-worker state (php-fpm's scoreboard); needs `2 * workerCount`
    /// entries, since a reload overlaps a slot's old and new worker.
    public var scoreboard: Scoreboard?
    /// Asked on SIGHUP before any worker is replaced: why the new workers would not start (e.g. a
    /// configuration file they read is broken), or `nil` to go ahead. A refused reload is logged
    /// and the current workers keep running.
    public var reloadCheck: @Sendable () -> String?

    public init(
        executablePath: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        workerCount: Int,
        listenFD: Int32,
        gracefulStopTimeout: Duration = .seconds(10),
        restartBackoff: RestartBackoff = RestartBackoff(),
        scoreboard: Scoreboard? = nil,
        reloadCheck: @escaping @Sendable () -> String? = { nil }
    ) {
        precondition(scoreboard.map { $0.layout.entries >= 2 * workerCount } ?? true,
                     "a scoreboard needs two entries per worker")
        precondition(workerCount > 0, "a pool needs at least one worker")
        self.executablePath = executablePath
        self.arguments = arguments
        self.environment = environment
        self.workerCount = workerCount
        self.listenFD = listenFD
        self.gracefulStopTimeout = gracefulStopTimeout
        self.restartBackoff = restartBackoff
        self.scoreboard = scoreboard
        self.reloadCheck = reloadCheck
    }
}

/// How soon a worker that failed is replaced, so a crash loop does not spin the machine.
public struct RestartBackoff: Sendable {
    /// Delay after a first crash; each further crash doubles it up to `maximumDelay`.
    public var initialDelay: Duration
    public var maximumDelay: Duration
    /// A worker that ran at least this long before crashing counts as a first crash again.
    public var resetAfterUptime: Duration
    /// A worker that exits 0 is recycling (it served its share of requests) and is replaced at once,
    /// but only if it ran at least this long; a faster clean exit is backed off like a crash, so a
    /// worker that exits straight away cannot make the supervisor spin.
    public var minimumUptimeForRecycling: Duration

    public init(
        initialDelay: Duration = .milliseconds(100),
        maximumDelay: Duration = .seconds(5),
        resetAfterUptime: Duration = .seconds(10),
        minimumUptimeForRecycling: Duration = .milliseconds(100)
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.resetAfterUptime = resetAfterUptime
        self.minimumUptimeForRecycling = minimumUptimeForRecycling
    }

    /// The delay before restarting after a crash, given the delay used after the previous one.
    func delay(after previousDelay: Duration?, uptime: Duration) -> Duration {
        guard let previousDelay, uptime < resetAfterUptime else { return initialDelay }
        return min(previousDelay * 2, maximumDelay)
    }
}
