import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A stop request that any number of threads can wait for with `poll(2)`.
///
/// Once tripped it stays tripped: its descriptor is the read end of a pipe that nobody reads, so
/// it polls readable for ever and every request loop waiting on it wakes (a signal would reach only one
/// thread, and `dup2` over a listening socket wakes none blocked in `poll`).
public final class StopLatch: Sendable {
    /// Readable once the latch is tripped: poll it. Owned by the latch, closed when it is freed.
    public let descriptor: Int32
    /// The pipe's write end. A signal handler may trip the latch by writing a byte to it (`write`
    /// is async-signal-safe, the Swift object is not); a loop that finds `descriptor` readable
    /// calls `trip()`, so `isTripped` catches up.
    public let writeDescriptor: Int32
    private let tripped = Atomic<Bool>(false)

    public init() throws(FastCGIError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw .cannotCreateStopLatch(errno: errno)
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)  // a full pipe must not block a writer
        }
        descriptor = ends[0]
        writeDescriptor = ends[1]
    }

    deinit {
        close(descriptor)
        close(writeDescriptor)
    }

    public var isTripped: Bool {
        tripped.load(ordering: .acquiring)
    }

    /// Blocks until the latch is tripped (by `trip()` or a write to `writeDescriptor`), then
    /// makes `isTripped` true. A signal that interrupts the wait does not end it.
    public func waitUntilTripped() {
        var descriptor = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, -1) <= 0 || descriptor.revents == 0 {}
        trip()
    }

    /// Trips the latch; later calls change nothing.
    public func trip() {
        guard !tripped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(writeDescriptor, &byte, 1)
    }
}
