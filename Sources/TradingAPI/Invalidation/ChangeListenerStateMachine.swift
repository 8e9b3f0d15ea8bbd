/// The decisions of `ChangeListener`, without I/O: when to (re)connect the `LISTEN` session,
/// when the epoch must be replaced, and how long to wait. Times are monotonic milliseconds.
///
/// The epoch is replaced after every successful `LISTEN` (commits made while nobody listened
/// were never notified) and after any failed cache write (a generation that was not replaced);
/// until that succeeds it is retried every `cacheRetryMilliseconds`. Connecting backs off from
/// `initialBackoffMilliseconds`, doubling to `maximumBackoffMilliseconds`.
struct ChangeListenerStateMachine {
    enum Action: Equatable {
        case connect
        /// Not connected: wait this long (or until stopped) before connecting again.
        case sleep(milliseconds: Int)
        case replaceEpoch
        /// Listening: wait up to this long for notifications.
        case waitForNotifications(milliseconds: Int)
    }

    static let initialBackoffMilliseconds = 100
    static let maximumBackoffMilliseconds = 5_000
    static let cacheRetryMilliseconds = 200
    /// The longest wait while listening, so a stop is noticed even without a wake-up.
    static let idleWaitMilliseconds = 1_000

    private(set) var isListening = false
    private(set) var epochReplacementDue = true
    private var connectFailures = 0
    private var nextConnectAt: UInt64 = 0
    private var nextEpochAttemptAt: UInt64 = 0

    func nextAction(now: UInt64) -> Action {
        guard isListening else {
            return now >= nextConnectAt ? .connect : .sleep(milliseconds: Int(nextConnectAt - now))
        }
        guard epochReplacementDue else { return .waitForNotifications(milliseconds: Self.idleWaitMilliseconds) }
        return now >= nextEpochAttemptAt
            ? .replaceEpoch
            : .waitForNotifications(milliseconds: Int(nextEpochAttemptAt - now))
    }

    mutating func connected() {
        isListening = true
        connectFailures = 0
        epochReplacementDue = true
        nextEpochAttemptAt = 0
    }

    /// A connect attempt failed, or the session was lost.
    mutating func disconnected(now: UInt64) {
        isListening = false
        epochReplacementDue = true
        let backoff = min(Self.maximumBackoffMilliseconds, Self.initialBackoffMilliseconds << min(connectFailures, 16))
        connectFailures += 1
        nextConnectAt = now + UInt64(backoff)
    }

    /// A notification said every user's rows changed (a TRUNCATE): replace the epoch now.
    mutating func everythingChanged() {
        epochReplacementDue = true
        nextEpochAttemptAt = 0
    }

    mutating func epochReplaced() {
        epochReplacementDue = false
    }

    /// Replacing the epoch or a user's generation failed: the cache may hold entries that should
    /// have been invalidated, so the epoch must be replaced once memcached answers again.
    mutating func cacheWriteFailed(now: UInt64) {
        epochReplacementDue = true
        nextEpochAttemptAt = now + UInt64(Self.cacheRetryMilliseconds)
    }
}
