/// Rounding rules of the API: money and percentages to 2 decimals, half away from zero.
public enum Rounding {
    /// Rounds to 2 decimals, half away from zero, treating values that are a binary hair off a
    /// half cent (1.005 is stored as 1.00499999…) as the half they were meant to be.
    public static func twoDecimals(_ value: Double) -> Double {
        guard value.isFinite else { return value }
        let scaled = value * 100
        let whole = scaled.rounded(.towardZero)
        let remainder = abs(scaled - whole)
        let tolerance = 1e-9 * max(1, abs(scaled))
        let rounded = abs(remainder - 0.5) <= tolerance
            ? whole + (scaled < 0 ? -1 : 1)
            : scaled.rounded(.toNearestOrAwayFromZero)
        return rounded / 100
    }
}
