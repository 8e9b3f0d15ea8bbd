import Postgres
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: databaseURL != nil, "needs DATABASE_URL (make test starts a Postgres)"))
struct PostgresListenerTests {
    let notify = PreparedStatement(name: "test_notify", sql: "SELECT pg_notify($1, $2)")

    func listener(_ name: String) -> PostgresListener {
        PostgresListener(configuration: .init(url: databaseURL!, applicationName: name))
    }

    /// Waits up to about a second for at least one notification.
    func notifications(_ listener: PostgresListener) throws -> [PostgresNotification] {
        for _ in 0..<20 {
            let batch = try listener.waitForNotifications(timeoutMilliseconds: 50)
            if !batch.isEmpty { return batch }
        }
        return []
    }

    @Test func deliversCommittedNotificationsInOrder() throws {
        let listening = listener("test listener order")
        try listening.connect(listeningOn: ["test_order"])
        let writer = PostgresConnection(configuration: .init(url: databaseURL!))
        _ = try writer.execute(notify, ["test_order", "first"])
        _ = try writer.execute(notify, ["test_order", "second"])
        _ = try writer.execute(notify, ["test_elsewhere", "not ours"])
        var received: [PostgresNotification] = []
        while received.count < 2, case let batch = try notifications(listening), !batch.isEmpty {
            received += batch
        }
        #expect(received == [.init(channel: "test_order", payload: "first"), .init(channel: "test_order", payload: "second")])
    }

    @Test func aRolledBackTransactionNotifiesNothing() throws {
        let listening = listener("test listener rollback")
        try listening.connect(listeningOn: ["test_rollback"])
        let writer = PostgresConnection(configuration: .init(url: databaseURL!))
        let failing = PreparedStatement(name: "test_notify_then_fail", sql: "SELECT pg_notify('test_rollback', 'lost'), 1 / 0")
        #expect(throws: PostgresError.self) { try writer.execute(failing, []) }
        _ = try writer.execute(notify, ["test_rollback", "kept"])
        #expect(try notifications(listening) == [.init(channel: "test_rollback", payload: "kept")])
    }

    @Test func returnsEarlyWhenTheWakeDescriptorIsReadable() throws {
        let listening = listener("test listener wake")
        try listening.connect(listeningOn: ["test_wake"])
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        _ = write(ends[1], "x", 1)
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        #expect(try listening.waitForNotifications(timeoutMilliseconds: 5000, wakeDescriptor: ends[0]).isEmpty)
        clock_gettime(CLOCK_MONOTONIC, &end)
        #expect(end.tv_sec - start.tv_sec < 2)
    }

    @Test func aTerminatedSessionIsReportedLost() throws {
        let name = "test listener lost \(getpid())"
        let listening = listener(name)
        try listening.connect(listeningOn: ["test_lost"])
        let admin = PostgresConnection(configuration: .init(url: databaseURL!))
        let kill = PreparedStatement(name: "test_terminate", sql: "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1")
        #expect(try admin.execute(kill, [name]).int(0, 0) == 1)
        #expect(throws: PostgresError.self) {
            for _ in 0..<40 { _ = try listening.waitForNotifications(timeoutMilliseconds: 50) }
        }
        #expect(!listening.isConnected)
    }

    @Test func refusesAChannelThatIsNotAPlainIdentifier() {
        #expect(throws: PostgresError.invalidIdentifier("x; DROP TABLE users")) {
            try listener("test listener name").connect(listeningOn: ["x; DROP TABLE users"])
        }
    }
}
