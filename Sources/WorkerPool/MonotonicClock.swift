#if canImport(Glibc)
import Glibc
#endif

/// `CLOCK_MONOTONIC` read straight from the vDSO, as plain nanoseconds: for timing every request,
/// where `ContinuousClock.now` (the concurrency runtime's clock, returned as a 128-bit
/// `Duration`) costs several times more per call (bench/README.md, issue 10).
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary start (boot), never going back.
    @inline(__always)
    public static func nanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
    }
}
