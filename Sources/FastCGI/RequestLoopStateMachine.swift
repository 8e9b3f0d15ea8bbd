/// What a request loop waits for next, between two requests. Pure: `FastCGIResponder` does the
/// polling, reading and closing it asks for, and the tests drive it without sockets.
///
/// The loops of a worker process share the connections nginx keeps alive (`KeptConnections`) and
/// wait on all of them and the listening socket at once: an idle kept connection costs a
/// descriptor, never a loop (docs/design/fastcgi-keepalive.md). `heldConnections` counts the
/// process's connections.
/// - Running, a loop waits for as long as it takes, and the process takes new connections while
///   it holds fewer than `maximumConnections` (past that it leaves them to other processes rather
///   than run out of descriptors).
/// - Stopping, it takes no new connection. Holding nothing, it ends. Holding connections, the
///   loops *drain* them: for at most `drainTimeout` from the first time a loop was asked, they go on
///   answering the requests nginx sends on them, as usual, and drops each one nginx closes; it
///   closes the rest at the deadline. It never closes a connection earlier, not even behind an
///   answer: nginx may reuse a connection before it has seen our close, and a close racing a reuse
///   is an upstream error (`writev() failed`) in nginx's log. nginx closes them itself, soon:
///   idle ones after its upstream `keepalive_timeout`, busy ones after `keepalive_requests`
///   (both well inside the drain, nginx/nginx.conf).
public struct RequestLoopStateMachine: Sendable {
    public enum Step: Equatable, Sendable {
        /// Wait for a request on a held connection, or a new connection if `acceptingConnections`;
        /// `timeout` `nil`: as long as it takes.
        case wait(acceptingConnections: Bool, timeout: Duration?)
        /// Stopping and the drain time is up: end (the process's exit closes what is left).
        case drainTimedOut
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
        return now < deadline ? .wait(acceptingConnections: false, timeout: deadline - now) : .drainTimedOut
    }
}
