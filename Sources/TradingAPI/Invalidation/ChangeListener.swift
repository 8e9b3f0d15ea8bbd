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
/// (`ChangeListenerStateMachine`), so a commit nobody heard is never hidden by the cache. The
/// epoch is written to its copy on every memcached server (`CacheKeys.epochCopies`), and only here.
public final class ChangeListener {
    public static let channel = "trading_api_changes"
    /// The payload that invalidates every user.
    static let everyone = "*"

    private let listener: PostgresListener
    private let cache: MemcachedClient
    /// The keys of the epoch's copies, in the order they are written.
    private let epochCopies: [String]
    /// A replaced epoch not yet announced to the live stream: announced once it is in a copy.
    private var unannouncedEpoch: [UInt8]?
    /// Whether tags carry the primary's WAL position (workers read from a replica), and the
    /// position read after the last batch of notifications (or at connect).
    private let stampsWALPosition: Bool
    private var walPosition: UInt64?
    private let logger: Logger
    /// The scoreboard's supervisor words (`MetricsLayout`): invalidations, their delay, reconnects;
    /// this thread is their only writer.
    private let metrics: ScoreboardWords?
    /// The live stream's publisher: told of registrations and commits; `nil` without a stream.
    private let live: LivePublisher?
    private var machine = ChangeListenerStateMachine()
    private var hasConnected = false
    private let started = ContinuousClock.now

    /// `stampsWALPosition`: workers may read views from a replica (`DATABASE_READ_URL`), so every
    /// tag written carries the primary's WAL insert position read after the commits it answers
    /// (`StoredTag`). Throws what `CacheKeys.epochCopies` throws.
    public init(database: PostgresConnection.Configuration, cache: MemcachedClient, metrics: ScoreboardWords? = nil,
                live: LivePublisher? = nil, stampsWALPosition: Bool = false, logger: Logger) throws(MemcachedError) {
        self.stampsWALPosition = stampsWALPosition
        self.listener = PostgresListener(configuration: database)
        self.cache = cache
        self.epochCopies = try CacheKeys.epochCopies(in: cache)
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
                    try readWALPosition()
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
            case .writeEpoch(let epochWrite):
                writeEpoch(epochWrite)
            case .checkEpoch:
                machine.epochRead(try? cache.get(many: epochCopies), now: now)
            case .waitForNotifications(let milliseconds):
                let untilExpiry = live?.millisecondsUntilNextExpiry(nowMilliseconds: Self.epochMilliseconds()) ?? Int64(milliseconds)
                do {
                    let notifications = try listener.waitForNotifications(
                        timeoutMilliseconds: Int32(max(1, min(Int64(milliseconds), untilExpiry))), wakeDescriptor: stop.descriptor)
                    let received = ContinuousClock.now
                    if notifications.contains(where: { $0.channel == Self.channel }) { try readWALPosition() }
                    let positioned = ContinuousClock.now
                    invalidate(notifications)
                    let invalidated = ContinuousClock.now
                    live?.expire(now: Self.epochMilliseconds() / 1000)
                    if ContinuousClock.now - received > .milliseconds(100) {
                        logger.warning("change listener slow", metadata: [
                            "wal position ms": "\((positioned - received) / .milliseconds(1))",
                            "invalidate ms": "\((invalidated - positioned) / .milliseconds(1))",
                            "live expire ms": "\((ContinuousClock.now - invalidated) / .milliseconds(1))"])
                    }
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
            let key = CacheKeys.generation(of: user)
            do {
                try cache.set(key, value: StoredTag(tag: .random(), walPosition: walPosition).bytes, ttlSeconds: 0)
            } catch {
                logger.warning("cache invalidation failed; the epoch will be replaced", metadata: ["key": "\(key)", "error": "\(error)"])
                machine.generationWriteFailed()
            }
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

    /// Reads the primary's WAL insert position when tags carry it: Postgres delivers a
    /// notification after its commit, so the position read now is past every commit notified
    /// so far (and, at connect, past every commit made while nobody listened).
    private func readWALPosition() throws(PostgresError) {
        guard stampsWALPosition else { return }
        guard let text = try listener.value(of: "SELECT (pg_current_wal_insert_lsn() - '0/0')::int8"),
              let position = UInt64(text) else {
            throw .connectionLost(message: "no WAL position")
        }
        walPosition = position
    }

    /// Writes the epoch's copies in the order of the server list (every listener uses the same
    /// order, so two writing at once rarely leave copies that disagree; the check settles those).
    private func writeEpoch(_ epochWrite: ChangeListenerStateMachine.EpochWrite) {
        let value: [UInt8]
        let copies: [Int]
        switch epochWrite {
        case .pause: (value, copies) = (CacheKeys.pausedEpoch, Array(epochCopies.indices))
        case .replace:
            // The position now, not the last batch's: another listener's failed write may be newer.
            if stampsWALPosition, (try? readWALPosition()) == nil { walPosition = nil }
            (value, copies) = (StoredTag(tag: .random(), walPosition: walPosition).bytes, Array(epochCopies.indices))
        case .fill(let filling, let missing): (value, copies) = (filling, missing)
        }
        if epochWrite == .replace { unannouncedEpoch = value }
        var failed: [Int] = []
        var lastError = ""
        for index in copies {
            do {
                try cache.set(epochCopies[index], value: value, ttlSeconds: 0)
            } catch {
                failed.append(index)
                lastError = "\(error)"
            }
        }
        machine.epochWritten(value, failedCopies: failed, now: now)
        if failed.count < copies.count, value == unannouncedEpoch {
            unannouncedEpoch = nil
            live?.changed([], everyone: true)  // what changed meanwhile is unknown
            metrics?.increment(MetricsLayout.invalidations + MetricsLayout.Invalidation.everyone.rawValue)
        }
        let missed = failed.map { epochCopies[$0] }
        switch epochWrite {
        case .pause where failed.count < copies.count:
            logger.info("cache paused until the change listener is connected", metadata: missed.isEmpty ? [:] : ["copies missed": "\(missed)"])
        case .replace where failed.count < copies.count:
            logger.info("cache epoch replaced; caching resumed", metadata: missed.isEmpty ? [:] : ["copies missed": "\(missed)"])
        case .fill where failed.isEmpty:
            logger.info("epoch copies caught up", metadata: ["copies": "\(copies.map { epochCopies[$0] })"])
        default:
            break
        }
        if !failed.isEmpty, epochWrite != .fill(value: value, copies: failed) {  // once per outage
            logger.warning("epoch copies not written; retrying", metadata: ["copies": "\(missed)", "error": "\(lastError)"])
        }
    }

    private static func epochMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    private var now: UInt64 {
        UInt64(max(0, (ContinuousClock.now - started) / .milliseconds(1)))
    }
}
