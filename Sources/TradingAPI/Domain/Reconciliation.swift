/// One reconciliation_logs row as the event lists show it.
public struct LogEvent: Equatable, Sendable {
    public var id: String
    public var eventType: String
    public var status: String
    public var ticket: Int64?
    public var symbol: String
    public var matched: Int?
    public var divergenceReason: String?
    public var errorMessage: String?
    public var createdAt: Timestamp

    public init(id: String, eventType: String, status: String, ticket: Int64?, symbol: String, matched: Int?,
                divergenceReason: String?, errorMessage: String?, createdAt: Timestamp) {
        self.id = id; self.eventType = eventType; self.status = status; self.ticket = ticket
        self.symbol = symbol; self.matched = matched; self.divergenceReason = divergenceReason
        self.errorMessage = errorMessage; self.createdAt = createdAt
    }
}

/// The user's latest `sync` row.
public struct LastSync: Equatable, Sendable {
    public var status: String
    public var durationMilliseconds: Int?
    public var errorMessage: String?
    public var at: Timestamp

    public init(status: String, durationMilliseconds: Int?, errorMessage: String?, at: Timestamp) {
        self.status = status
        self.durationMilliseconds = durationMilliseconds
        self.errorMessage = errorMessage
        self.at = at
    }
}

/// Is the account in sync with the bot?
public struct ReconciliationStatus: Equatable, Sendable {
    /// A last sync older than this makes the account `idle`.
    public static let idleAfterSeconds: Int64 = 300

    public var lastSync: LastSync?
    public var totalSyncs: Int
    public var openPositions: Int
    public var matchedPositions: Int
    public var divergences: Int
    public var recentEvents: [LogEvent]
    /// The request's clock when the figures were read.
    public var now: Timestamp

    public init(lastSync: LastSync?, totalSyncs: Int, openPositions: Int, matchedPositions: Int, divergences: Int,
                recentEvents: [LogEvent], now: Timestamp) {
        self.lastSync = lastSync; self.totalSyncs = totalSyncs; self.openPositions = openPositions
        self.matchedPositions = matchedPositions; self.divergences = divergences
        self.recentEvents = recentEvents; self.now = now
    }

    /// `idle` without a sync or when the last is older than 300 s; else `warning` when it failed
    /// or was partial or an open position diverges; else `healthy`.
    public var status: String {
        guard let lastSync, now.microseconds - lastSync.at.microseconds <= Self.idleAfterSeconds * 1_000_000 else {
            return "idle"
        }
        if lastSync.status == "failed" || lastSync.status == "partial" || divergences > 0 { return "warning" }
        return "healthy"
    }

    /// When the clock alone changes `status`: the last sync turning 300 s old; `nil` when the
    /// account is idle already (it stays idle until a write).
    public var changesAt: Timestamp? {
        guard let lastSync, status != "idle" else { return nil }
        return lastSync.at.leavingWindow(ofSeconds: Self.idleAfterSeconds)
    }

    /// The last sync's message when it failed (idle or not), else `nil`.
    public var errorMessage: String? {
        guard let lastSync, lastSync.status == "failed" else { return nil }
        return lastSync.errorMessage
    }
}
