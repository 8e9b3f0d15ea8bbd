import FoundationEssentials
import Logging
import Memcached
import Postgres
import WorkerPool

/// A request to stop a long-running task: checked between waits, and readable on `descriptor`
/// so that a wait ends early.
public protocol StopSignal: Sendable {
    var isTripped: Bool { get }
    /// Becomes readable when the stop is requested.
    var descriptor: Int32 { get }
    /// Waits up to `timeoutMilliseconds`; returns `isTripped`.
    func waitUntilTripped(timeoutMilliseconds: Int32) -> Bool
}

/// Push invalidation: `LISTEN`s for commits that touch users' rows and replaces each such user's
/// cache generation, so their cached views are misses from then on (`ResponseCache`).
///
/// Runs in the supervisor process on a thread of its own; workers stay a plain request loop.
/// The triggers of `sql/migrations/004_change_notify.sql` send one `NOTIFY trading_api_changes`
/// per user a committed statement touched (payload: the user's UUID, or `*` after a TRUNCATE,
/// then a space and the statement's start in microseconds since the epoch; migration 006).
/// Postgres delivers it after the commit only, so a rolled-back write invalidates nothing.
/// While the session is down the cache is paused, and on reconnect the epoch is replaced
/// (`ChangeListenerStateMachine`), so a commit nobody heard is never hidden by the cache.
public final class ChangeListener {
    public static let channel = "trading_api_changes"
    /// The payload that invalidates every user.
    static let everyone = "*"

    private let listener: PostgresListener
    private let cache: MemcachedClient
    private let logger: Logger
    /// The scoreboard's supervisor words (`MetricsLayout`): invalidations, their delay, reconnects;
    /// this thread is their only writer.
    private let metrics: ScoreboardWords?
    /// The live stream's publisher: told of registrations and commits; `nil` without a stream.
    private let live: LivePublisher?
    private var machine = ChangeListenerStateMachine()
    private var hasConnected = false
    private let started = ContinuousClock.now

    public init(database: PostgresConnection.Configuration, cache: MemcachedClient, metrics: ScoreboardWords? = nil,
                live: LivePublisher? = nil, logger: Logger) {
        self.listener = PostgresListener(configuration: database)
        self.cache = cache
        self.metrics = metrics
        self.live = live
        self.logger = logger
    }

    /// Runs until `stop` is tripped.
    public func run(until stop: some StopSignal) {
        logger.info("listening for changes", metadata: ["channel": "\(Self.channel)"])
        var lastConnectError = ""
        while !stop.isTripped {
            switch machine.nextAction(now: now) {
            case .connect:
                do {
                    try listener.connect(listeningOn: [Self.channel] + (live == nil ? [] : [StreamRegistration.channel]))
                    if hasConnected { metrics?.increment(MetricsLayout.listenerReconnects) }
                    hasConnected = true
                    machine.connected()
                    live?.restore(now: Self.epochMilliseconds() / 1000)
                    lastConnectError = ""
                    logger.info("change listener connected")
                } catch {
                    machine.disconnected(now: now)
                    if "\(error)" != lastConnectError {  // once per outage, not once per attempt
                        lastConnectError = "\(error)"
                        logger.warning("change listener cannot connect; retrying with back-off", metadata: ["error": "\(error)"])
                    }
                }
            case .sleep(let milliseconds):
                _ = stop.waitUntilTripped(timeoutMilliseconds: Int32(milliseconds))
            case .pauseCache:
                if write(CacheKeys.epoch, CacheKeys.pausedEpoch) {
                    machine.epochWritten()
                    logger.info("cache paused until the change listener is connected")
                }
            case .replaceEpoch:
                if write(CacheKeys.epoch, Array(CacheGeneration.random().text.utf8)) {
                    live?.changed([], everyone: true)  // what changed meanwhile is unknown
                    metrics?.increment(MetricsLayout.invalidations + MetricsLayout.Invalidation.everyone.rawValue)
                    machine.epochWritten()
                    logger.info("cache epoch replaced; caching resumed")
                }
            case .waitForNotifications(let milliseconds):
                let untilExpiry = live?.millisecondsUntilNextExpiry(nowMilliseconds: Self.epochMilliseconds()) ?? Int64(milliseconds)
                do {
                    let notifications = try listener.waitForNotifications(
                        timeoutMilliseconds: Int32(max(1, min(Int64(milliseconds), untilExpiry))), wakeDescriptor: stop.descriptor)
                    invalidate(notifications)
                    live?.expire(now: Self.epochMilliseconds() / 1000)
                } catch {
                    machine.disconnected(now: now)
                    logger.warning("change listener lost its connection; cache paused, every entry retired on reconnect",
                                   metadata: ["error": "\(error)"])
                }
            }
        }
        listener.disconnect()
    }

    private func invalidate(_ notifications: [PostgresNotification]) {
        var users = Set<UserID>()
        var everyone = false
        var writtenAt: [Int64] = []
        for notification in notifications {
            if notification.channel == StreamRegistration.channel {
                live?.register(payload: notification.payload, now: Self.epochMilliseconds() / 1000)
                continue
            }
            let change = Change(payload: notification.payload)
            switch change.scope {
            case .user(let user):
                users.insert(user)
            case .everyone:
                everyone = true
                machine.everythingChanged()
            case .unknown:
                logger.warning("unexpected change notification; invalidating everything", metadata: ["payload": "\(notification.payload)"])
                everyone = true
                machine.everythingChanged()
            }
            if let at = change.writtenAt { writtenAt.append(at) }
        }
        for user in users {
            _ = write(CacheKeys.generation(of: user), Array(CacheGeneration.random().text.utf8))
        }
        // After the cache: a client that fetches on the event gets the new rows.
        if everyone || !users.isEmpty { live?.changed(users, everyone: everyone) }
        guard let metrics else { return }
        metrics.increment(MetricsLayout.invalidations + MetricsLayout.Invalidation.user.rawValue, by: UInt64(users.count))
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        for at in writtenAt {
            DurationBuckets.record(UInt64(max(0, now - at)), into: metrics, at: MetricsLayout.invalidationDelays)
        }
    }

    /// One notification's payload: `<uuid>|* [<statement start, µs since the epoch>]`.
    struct Change: Equatable {
        enum Scope: Equatable {
            case user(UserID)
            case everyone
            case unknown
        }

        var scope: Scope
        var writtenAt: Int64?

        init(payload: String) {
            let parts = payload.split(separator: " ", maxSplits: 1)
            let subject = parts.first.map(String.init) ?? ""
            if let user = UserID(subject) {
                scope = .user(user)
            } else {
                scope = subject == ChangeListener.everyone ? .everyone : .unknown
            }
            writtenAt = parts.count == 2 ? Int64(parts[1]) : nil
        }
    }

    /// Stores `value` under `key` for good; on failure the epoch becomes due.
    private func write(_ key: String, _ value: [UInt8]) -> Bool {
        do {
            try cache.set(key, value: value, ttlSeconds: 0)
            return true
        } catch {
            logger.warning("cache invalidation failed; the epoch will be replaced", metadata: ["key": "\(key)", "error": "\(error)"])
            machine.cacheWriteFailed(now: now)
            return false
        }
    }

    private static func epochMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    private var now: UInt64 {
        UInt64(max(0, (ContinuousClock.now - started) / .milliseconds(1)))
    }
}
