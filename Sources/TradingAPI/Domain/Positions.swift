/// The latest row of one position, with what the views need from around it.
public struct PositionState: Equatable, Sendable {
    public var ticket: Int64
    public var symbol: String
    public var direction: String
    public var volume: Double
    public var entryPrice: Double
    public var currentPrice: Double?
    public var takeProfit: Double?
    public var stopLoss: Double?
    public var matched: Int?
    public var divergenceReason: String?
    public var openedAt: Timestamp
    public var updatedAt: Timestamp
    /// From `instruments`, 1 where the symbol has none.
    public var contractSize: Double
    public var isOpen: Bool
    public var closeReason: String?
    public var closedPrice: Double?
    /// `pnl_gbp` of the latest row.
    public var pnlGBP: Double?

    public init(ticket: Int64, symbol: String, direction: String, volume: Double, entryPrice: Double,
                currentPrice: Double?, takeProfit: Double? = nil, stopLoss: Double? = nil, matched: Int?,
                divergenceReason: String? = nil, openedAt: Timestamp, updatedAt: Timestamp,
                contractSize: Double, isOpen: Bool = true, closeReason: String? = nil,
                closedPrice: Double? = nil, pnlGBP: Double? = nil) {
        self.ticket = ticket; self.symbol = symbol; self.direction = direction; self.volume = volume
        self.entryPrice = entryPrice; self.currentPrice = currentPrice; self.takeProfit = takeProfit
        self.stopLoss = stopLoss; self.matched = matched; self.divergenceReason = divergenceReason
        self.openedAt = openedAt; self.updatedAt = updatedAt; self.contractSize = contractSize
        self.isOpen = isOpen; self.closeReason = closeReason; self.closedPrice = closedPrice; self.pnlGBP = pnlGBP
    }

    /// `(current - entry) × volume × contract_size`, negated for sells; unrounded. `nil` when the
    /// position is closed or has no current price.
    public var unrealizedPnL: Double? {
        guard isOpen, let currentPrice else { return nil }
        let pnl = (currentPrice - entryPrice) * volume * contractSize
        return direction == "sell" ? -pnl : pnl
    }

    public var isMatchedWithBot: Bool { matched == 1 }
    public var isDiverging: Bool { matched == 2 }
}

/// The open positions of one user with their totals.
public struct OpenPositions: Equatable, Sendable {
    public var positions: [PositionState]
    /// Latest equity, `nil` without a snapshot.
    public var equity: Double?

    public init(positions: [PositionState], equity: Double?) {
        self.positions = positions
        self.equity = equity
    }

    /// Sum of the unrounded P&L of positions that have one.
    public var totalUnrealizedPnL: Double {
        positions.reduce(0) { $0 + ($1.unrealizedPnL ?? 0) }
    }

    /// Total over the latest equity × 100; `nil` without a snapshot (or with zero equity).
    public var totalUnrealizedPnLPercent: Double? {
        guard let equity, equity != 0 else { return nil }
        return totalUnrealizedPnL / equity * 100
    }

    public var lastUpdatedAt: Timestamp? {
        positions.map(\.updatedAt).max()
    }
}
