import FastCGI
import XCTest

final class RequestLoopStateMachineTests: XCTestCase {
    private let start = ContinuousClock.now

    private func machine() -> RequestLoopStateMachine {
        RequestLoopStateMachine(drainTimeout: .seconds(3), maximumConnections: 4)
    }

    func testRunningLoopWaitsForEverOnItsConnectionsAndNewOnes() {
        var machine = machine()
        XCTAssertEqual(machine.nextStep(heldConnections: 0, stopping: false, now: start), .wait(acceptingConnections: true, timeout: nil))
        XCTAssertEqual(machine.nextStep(heldConnections: 3, stopping: false, now: start), .wait(acceptingConnections: true, timeout: nil))
    }

    func testLoopHoldingItsMaximumLeavesNewConnectionsToOthers() {
        var machine = machine()
        XCTAssertEqual(machine.nextStep(heldConnections: 4, stopping: false, now: start), .wait(acceptingConnections: false, timeout: nil))
    }

    func testStoppingLoopHoldingNothingStops() {
        var machine = machine()
        XCTAssertEqual(machine.nextStep(heldConnections: 0, stopping: true, now: start), .stop)
    }

    func testDrainTakesNoNewConnectionAndItsDeadlineIsNeverExtended() {
        var machine = machine()
        XCTAssertEqual(machine.nextStep(heldConnections: 2, stopping: true, now: start), .wait(acceptingConnections: false, timeout: .seconds(3)))
        XCTAssertEqual(
            machine.nextStep(heldConnections: 1, stopping: true, now: start + .seconds(1)),
            .wait(acceptingConnections: false, timeout: .seconds(2)), "after a request or a close, only what is left")
        XCTAssertEqual(machine.nextStep(heldConnections: 1, stopping: true, now: start + .milliseconds(2999)),
                       .wait(acceptingConnections: false, timeout: .milliseconds(1)))
        XCTAssertEqual(machine.nextStep(heldConnections: 1, stopping: true, now: start + .seconds(3)), .drainTimedOut)
        XCTAssertEqual(machine.nextStep(heldConnections: 0, stopping: true, now: start + .seconds(3)), .stop)
    }

    func testIdleConnectionsAreNeverClosedBeforeTheDeadline() {
        var machine = machine()
        for milliseconds in stride(from: 0, to: 3000, by: 250) {
            XCTAssertNotEqual(
                machine.nextStep(heldConnections: 1, stopping: true, now: start + .milliseconds(milliseconds)),
                .drainTimedOut)
        }
    }
}
