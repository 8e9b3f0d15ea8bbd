/// The decisions of `ChangeListener`, without I/O: when to (re)connect the `LISTEN` session,
/// when to pause the cache or replace its epoch, and how long to wait. Times are monotonic
/// milliseconds.
///
/// While nobody listens, a commit would go unnoticed, so the cache is paused (workers neither
/// serve nor store entries: `X-Cache: BYPASS`) from the start and from every lost session until
/// `LISTEN` succeeds; then the epoch is replaced, which ends the pause and retires every entry
/// stored before. A failed memcached write while listening (a generation that was not replaced)
/// also makes the epoch due. Epoch writes are retried every `cacheRetryMilliseconds`;
/// connecting backs off from `initialBackoffMilliseconds`, doubling to `maximumBackoffMilliseconds`.
struct ChangeListenerStateMachine {
    enum Action: Equatable {
        /// Set the epoch to the paused marker.
        case pauseCache
        case connect
        /// Not connected: wait this long (or until stopped) before the next action.
        case sleep(milliseconds: Int)
        /// Set the epoch to a fresh tag.
        case replaceEpoch
        /// Listening: wait up to this long for notifications.
        case waitForNotifications(milliseconds: Int)
    }

    /// What the epoch must become next, if anything.
    enum EpochWrite: Equatable {
        case pause
        case replace
    }

    static let initialBackoffMilliseconds = 100
    static let maximumBackoffMilliseconds = 2_000
    static let cacheRetryMilliseconds = 200
    /// The longest wait while listening, so a stop is noticed even without a wake-up.
    static let idleWaitMilliseconds = 1_000

    private(set) var isListening = false
    /// Starts with a pause: an epoch left by an earlier run may predate commits nobody heard.
    private(set) var epochWriteDue: EpochWrite? = .pause
    private var connectFailures = 0
    private var nextConnectAt: UInt64 = 0
    private var nextEpochAttemptAt: UInt64 = 0

    func nextAction(now: UInt64) -> Action {
        if let due = epochWriteDue, now >= nextEpochAttemptAt {
            return due == .pause ? .pauseCache : .replaceEpoch
        }
        if isListening {
            let wait = epochWriteDue == nil ? Self.idleWaitMilliseconds : Int(nextEpochAttemptAt - now)
            return .waitForNotifications(milliseconds: wait)
        }
        if now >= nextConnectAt { return .connect }
        var wakeAt = nextConnectAt
        if epochWriteDue != nil { wakeAt = min(wakeAt, nextEpochAttemptAt) }
        return .sleep(milliseconds: Int(wakeAt - now))
    }

    mutating func connected() {
        isListening = true
        connectFailures = 0
        epochWriteDue = .replace
        nextEpochAttemptAt = 0
    }

    /// A connect attempt failed, or the session was lost.
    mutating func disconnected(now: UInt64) {
        if isListening || epochWriteDue == .replace {
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
        epochWriteDue = .replace
        nextEpochAttemptAt = 0
    }

    /// The due epoch write succeeded.
    mutating func epochWritten() {
        epochWriteDue = nil
    }

    /// An epoch write, or a user's generation, failed: the cache may hold entries that should
    /// have been retired, so the epoch is written again once memcached answers.
    mutating func cacheWriteFailed(now: UInt64) {
        if epochWriteDue == nil { epochWriteDue = isListening ? .replace : .pause }
        nextEpochAttemptAt = now + UInt64(Self.cacheRetryMilliseconds)
    }
}
