/// What a request loop waits for next, between two requests. Pure: `FastCGIResponder` does the
/// polling, reading and closing it asks for, and the tests drive it without sockets.
///
/// A loop holds every connection it accepted for as long as nginx keeps it alive
/// (`fastcgi_keep_conn on`), and waits on all of them, the listening socket and the stop latch at
/// once: an idle kept connection costs a descriptor, never a loop (docs/design/fastcgi-keepalive.md).
/// - Running, it waits with no timeout, and takes new connections while it holds fewer than
///   `maximumConnections` (past that it leaves them to the other loops rather than run out of
///   descriptors).
/// - Stopping, it takes no new connection. Holding nothing, it ends. Holding connections, it
///   *drains* them: for at most `drainTimeout` from the first time it was asked it goes on
///   answering the requests nginx sends on them, as usual, and drops each one nginx closes; it
///   closes the rest at the deadline. It never closes a connection earlier, not even behind an
///   answer: nginx may reuse a connection before it has seen our close, and a close racing a reuse
///   is an upstream error (`writev() failed`) in nginx's log. nginx closes them itself, soon:
///   idle ones after its upstream `keepalive_timeout`, busy ones after `keepalive_requests`
///   (both well inside the drain, nginx/nginx.conf).
public struct RequestLoopStateMachine: Sendable {
    public enum Step: Equatable, Sendable {
        /// Poll the held connections, the stop latch, and the listening socket if
        /// `acceptingConnections`; `timeout` `nil` waits for ever.
        case wait(acceptingConnections: Bool, timeout: Duration?)
        /// Stopping and the drain time is up: close every held connection.
        case closeHeldConnections
        /// Stopping with nothing held: the loop ends.
        case stop
    }

    /// How long a stopping loop waits for nginx to use or close its idle kept connections.
    public let drainTimeout: Duration
    /// The most connections one loop holds before it stops taking new ones.
    public let maximumConnections: Int
    private var drainDeadline: ContinuousClock.Instant?

    public init(drainTimeout: Duration, maximumConnections: Int) {
        self.drainTimeout = drainTimeout
        self.maximumConnections = maximumConnections
    }

    /// - Parameters:
    ///   - heldConnections: connections kept open from earlier requests.
    ///   - stopping: the stop latch is tripped.
    public mutating func nextStep(heldConnections: Int, stopping: Bool, now: ContinuousClock.Instant) -> Step {
        guard stopping else {
            return .wait(acceptingConnections: heldConnections < maximumConnections, timeout: nil)
        }
        guard heldConnections > 0 else { return .stop }
        let deadline = drainDeadline ?? now + drainTimeout
        drainDeadline = deadline
        return now < deadline ? .wait(acceptingConnections: false, timeout: deadline - now) : .closeHeldConnections
    }
}
