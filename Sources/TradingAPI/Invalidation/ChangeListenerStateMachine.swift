/// The decisions of `ChangeListener`, without I/O: when to (re)connect the `LISTEN` session,
/// when to pause the cache, replace its epoch or catch a copy of it up, and how long to wait.
/// Times are monotonic milliseconds.
///
/// While nobody listens, a commit would go unnoticed, so the cache is paused (workers neither
/// serve nor store entries: `X-Cache: BYPASS`) from the start and from every lost session until
/// `LISTEN` succeeds; then the epoch is replaced, which ends the pause and retires every entry
/// stored before. A failed memcached write while listening (a generation that was not replaced)
/// also makes a new epoch due at once.
///
/// The epoch has a copy on every memcached server (`EpochReading`). A write that reaches only
/// some copies leaves the others to be caught up with the same value every
/// `cacheRetryMilliseconds` (a server back from a partition disagrees until then, so nothing it
/// kept is trusted). Every `epochCheckMilliseconds` the copies are read back (`repair`), which
/// restores copies lost with a restarted server and settles copies that other listeners (one per
/// worker host) wrote at the same moment. Connecting backs off from
/// `initialBackoffMilliseconds`, doubling to `maximumBackoffMilliseconds`.
struct ChangeListenerStateMachine {
    enum Action: Equatable {
        case connect
        /// Not connected: wait this long (or until stopped) before the next action.
        case sleep(milliseconds: Int)
        /// Listening: wait up to this long for notifications.
        case waitForNotifications(milliseconds: Int)
        /// Write the epoch's copies; report with `epochWritten(_:failedCopies:now:)`.
        case writeEpoch(EpochWrite)
        /// Read every copy of the epoch; report with `epochRead(_:now:)`.
        case checkEpoch
    }

    /// What the epoch's copies must become next.
    enum EpochWrite: Equatable {
        /// The paused marker, to every copy.
        case pause
        /// A fresh tag, to every copy.
        case replace
        /// `value` to the copies at these indices (of `CacheKeys.epochCopies`), which missed it.
        case fill(value: [UInt8], copies: [Int])
    }

    static let initialBackoffMilliseconds = 100
    static let maximumBackoffMilliseconds = 2_000
    static let cacheRetryMilliseconds = 200
    static let epochCheckMilliseconds = 500
    /// The longest wait while listening, so a stop is noticed even without a wake-up.
    static let idleWaitMilliseconds = 1_000

    private(set) var isListening = false
    /// Starts with a pause: an epoch left by an earlier run may predate commits nobody heard.
    private(set) var epochWriteDue: EpochWrite? = .pause
    private var connectFailures = 0
    private var nextConnectAt: UInt64 = 0
    private var nextEpochAttemptAt: UInt64 = 0
    private var nextCheckAt: UInt64 = 0

    func nextAction(now: UInt64) -> Action {
        let epochEventAt: UInt64
        if let due = epochWriteDue {
            if now >= nextEpochAttemptAt { return .writeEpoch(due) }
            epochEventAt = nextEpochAttemptAt
        } else {
            if now >= nextCheckAt { return .checkEpoch }
            epochEventAt = nextCheckAt
        }
        if isListening {
            return .waitForNotifications(milliseconds: min(Self.idleWaitMilliseconds, Int(epochEventAt - now)))
        }
        if now >= nextConnectAt { return .connect }
        return .sleep(milliseconds: Int(min(nextConnectAt, epochEventAt) - now))
    }

    mutating func connected() {
        isListening = true
        connectFailures = 0
        replaceNow()
    }

    /// A connect attempt failed, or the session was lost.
    mutating func disconnected(now: UInt64) {
        if isListening || writesTag(epochWriteDue) {
            epochWriteDue = .pause
            nextEpochAttemptAt = 0
        }
        isListening = false
        let backoff = min(Self.maximumBackoffMilliseconds, Self.initialBackoffMilliseconds << min(connectFailures, 16))
        connectFailures += 1
        nextConnectAt = now + UInt64(backoff)
    }

    /// A notification said every user's rows changed (a TRUNCATE): replace the epoch now.
    mutating func everythingChanged() {
        guard isListening else { return }
        replaceNow()
    }

    /// A user's generation could not be replaced: the cache may hold entries that should have
    /// been retired, so a new epoch is due at once (a paused cache serves nothing anyway).
    mutating func generationWriteFailed() {
        guard isListening else { return }
        replaceNow()
    }

    /// The due epoch write wrote `value` to every copy but `failedCopies`, which are caught up
    /// with the same value after `cacheRetryMilliseconds`.
    mutating func epochWritten(_ value: [UInt8], failedCopies: [Int], now: UInt64) {
        if failedCopies.isEmpty {
            epochWriteDue = nil
            nextCheckAt = now + UInt64(Self.epochCheckMilliseconds)
        } else {
            epochWriteDue = .fill(value: value, copies: failedCopies)
            nextEpochAttemptAt = now + UInt64(Self.cacheRetryMilliseconds)
        }
    }

    /// The copies as read back (`nil`: the read failed; tried again at the next check).
    mutating func epochRead(_ copies: [[UInt8]?]?, now: UInt64) {
        nextCheckAt = now + UInt64(Self.epochCheckMilliseconds)
        guard epochWriteDue == nil, let copies, let repair = Self.repair(copies, isListening: isListening) else { return }
        epochWriteDue = repair
        nextEpochAttemptAt = 0
    }

    /// What copies read back need (`nil`: nothing). Copies that disagree, or hold neither a tag
    /// nor the marker, get a fresh value (a new tag while listening, the marker otherwise); a
    /// pause while this listener listens is replaced (another listener that lost its session
    /// wrote it, and commits are heard here); copies that could not be read are filled with the
    /// value the others agree on. Copies that agree on a tag this listener did not write are
    /// left alone: another listener replaced the epoch after everything this one wrote.
    static func repair(_ copies: [[UInt8]?], isListening: Bool) -> EpochWrite? {
        let fresh: EpochWrite = isListening ? .replace : .pause
        let present = copies.compactMap { $0 }
        guard let agreed = present.first, present.allSatisfy({ $0 == agreed }) else { return fresh }
        if agreed == CacheKeys.pausedEpoch {
            if isListening { return .replace }
        } else if StoredTag(agreed) == nil {
            return fresh
        }
        let missing = copies.indices.filter { copies[$0] == nil }
        return missing.isEmpty ? nil : .fill(value: agreed, copies: missing)
    }

    private mutating func replaceNow() {
        epochWriteDue = .replace
        nextEpochAttemptAt = 0
    }

    /// True when `write` would put a tag in a copy (and so must not happen while not listening).
    private func writesTag(_ write: EpochWrite?) -> Bool {
        switch write {
        case .replace: true
        case .fill(let value, _): value != CacheKeys.pausedEpoch
        case .pause, nil: false
        }
    }
}
