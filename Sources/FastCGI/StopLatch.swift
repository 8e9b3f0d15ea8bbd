import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A worker's stop request: a flag its request loops check between waits (at least every
/// `FastCGIResponder.stopCheckInterval`), and a pipe a signal handler can write to.
///
/// Once tripped it stays tripped. A signal handler cannot call into Swift objects, so it writes a
/// byte to `writeDescriptor` (the self-pipe trick); the worker's main thread, waiting in
/// `waitUntilTripped()`, wakes and trips the latch.
public final class StopLatch: Sendable {
    /// The pipe's read end: readable once the latch is tripped or a byte was written to it.
    /// Owned by the latch, closed when it is freed.
    public let descriptor: Int32
    /// The pipe's write end, for a signal handler (`write` is async-signal-safe).
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

    /// Waits up to `timeoutMilliseconds` for the latch to be tripped; returns `isTripped`.
    public func waitUntilTripped(timeoutMilliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, timeoutMilliseconds) > 0 && descriptor.revents != 0 && !isTripped {
            trip()  // a byte from the signal handler
        }
        return isTripped
    }

    /// Trips the latch; later calls change nothing.
    public func trip() {
        guard !tripped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(writeDescriptor, &byte, 1)
    }
}
