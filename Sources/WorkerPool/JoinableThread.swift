import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread that runs one closure and is joined when it is done: what a worker's request
/// loops run on. (Foundation's `Thread` can be neither joined nor given a stack size.)
public final class JoinableThread: Sendable {
    /// `pthread_create` failed; `errno` is its result (EAGAIN: out of threads or memory).
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public let errno: Int32
        public var description: String { "cannot start a thread: " + String(cString: strerror(errno)) }
    }

    /// The closure crosses into the new thread as a retained raw pointer. `Body` is immutable and
    /// its closure `@Sendable`, so nothing the type system checks is hidden by the pointer.
    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private let thread: pthread_t
    private let joined = Atomic<Bool>(false)

    /// Starts `body` on a new thread.
    /// - Parameter stackSize: bytes reserved for its stack (only touched pages cost memory).
    public init(stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)

        let argument = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { argument in
            let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, argument)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(argument).release()
            throw StartError(errno: result)
        }
        self.thread = thread
    }

    /// Waits until the closure has returned. Only the first call waits; later ones return at once.
    public func join() {
        guard !joined.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pthread_join(thread, nil)
    }

    deinit {
        if !joined.load(ordering: .acquiring) {
            pthread_detach(thread)
        }
    }
}
