/// `GET /status`: php-fpm's status page (`pm.status_path`) for this pool, plain text by default
/// and JSON with `?json`, always with every worker (php-fpm's `?full`).
///
/// Beyond php-fpm's fields: each worker's request loops (a worker serves `FCGI_LOOPS` requests
/// at once), the current request's id and phase (`RequestPhase`), and the real accept-queue depth
/// of the unix socket (php-fpm reads 0 there).
struct PoolStatusPage {
    let reading: PoolReading
    /// The request's clock.
    let now: Timestamp

    func render(json: Bool) -> APIResponse {
        json ? APIResponse(status: 200, headers: Self.headers, body: renderJSON())
            : APIResponse(status: 200, headers: Self.headers, body: Array(renderText().utf8), contentType: "text/plain; charset=utf-8")
    }

    private static let headers = [("Cache-Control", "no-store")]

    private var busyLoops: Int { reading.workers.reduce(0) { $0 + $1.requests.count } }
    private var nowSeconds: Int { Int(now.microseconds / 1_000_000) }

    private func renderJSON() -> [UInt8] {
        var json = JSONWriter(capacity: 1024)
        json.object { json in
            json.field("pool", "trading-api")
            json.field("process_manager", "static")
            json.field("start_time", Timestamp(microseconds: Int64(reading.startedAt) * 1_000_000).rfc3339)
            json.field("start_since", nowSeconds - reading.startedAt)
            json.field("accepted_conn", Int(clamping: reading.acceptedRequests))
            json.field("listen_queue", reading.listenQueue?.depth)
            json.field("listen_queue_len", reading.listenQueue?.limit)
            json.field("idle_loops", reading.workers.count * reading.loopsPerWorker - busyLoops)
            json.field("active_loops", busyLoops)
            json.field("total_processes", reading.workers.count)
            json.field("loops_per_process", reading.loopsPerWorker)
            json.field("worker_restarts", Int(clamping: reading.pool[.workerStarts, default: 0]) - reading.workers.count)
            json.field("slow_requests", Int(clamping: reading.totals[MetricsLayout.slowRequests]))
            json.key("processes")
            json.array { json in
                for worker in reading.workers {
                    json.object { json in
                        json.field("pid", Int(worker.pid))
                        json.field("slot", worker.slot)
                        json.field("state", worker.requests.isEmpty ? "Idle" : "Running")
                        json.field("start_time", Timestamp(microseconds: Int64(worker.startedAt) * 1_000_000).rfc3339)
                        json.field("start_since", nowSeconds - worker.startedAt)
                        json.field("requests", Int(clamping: worker.served))
                        json.field("memory_bytes", worker.residentBytes)
                        json.key("current_requests")
                        json.array { json in
                            for request in worker.requests {
                                json.object { json in
                                    json.field("method", request.method)
                                    json.field("request_uri", request.path)
                                    json.field("request_id", request.requestID)
                                    json.field("phase", request.phase.label)
                                    json.field("duration_ms", age(of: request))
                                }
                            }
                        }
                    }
                }
            }
        }
        return json.bytes
    }

    private func renderText() -> String {
        var lines: [(String, String)] = [
            ("pool", "trading-api"),
            ("process manager", "static"),
            ("start time", Timestamp(microseconds: Int64(reading.startedAt) * 1_000_000).rfc3339),
            ("start since", "\(nowSeconds - reading.startedAt)"),
            ("accepted conn", "\(reading.acceptedRequests)"),
            ("listen queue", reading.listenQueue.map { "\($0.depth)" } ?? "-"),
            ("listen queue len", reading.listenQueue.map { "\($0.limit)" } ?? "-"),
            ("idle loops", "\(reading.workers.count * reading.loopsPerWorker - busyLoops)"),
            ("active loops", "\(busyLoops)"),
            ("total processes", "\(reading.workers.count)"),
            ("loops per process", "\(reading.loopsPerWorker)"),
            ("worker restarts", "\(Int(clamping: reading.pool[.workerStarts, default: 0]) - reading.workers.count)"),
            ("slow requests", "\(reading.totals[MetricsLayout.slowRequests])"),
        ]
        for worker in reading.workers {
            lines.append(("", ""))
            lines += [
                ("pid", "\(worker.pid)"),
                ("slot", "\(worker.slot)"),
                ("state", worker.requests.isEmpty ? "Idle" : "Running"),
                ("start time", Timestamp(microseconds: Int64(worker.startedAt) * 1_000_000).rfc3339),
                ("start since", "\(nowSeconds - worker.startedAt)"),
                ("requests", "\(worker.served)"),
                ("memory", worker.residentBytes.map { "\($0)" } ?? "-"),
            ]
            for request in worker.requests {
                lines += [
                    ("request method", Self.printable(request.method)),
                    ("request URI", Self.printable(request.path)),
                    ("request id", Self.printable(request.requestID)),
                    ("request phase", request.phase.label),
                    ("request duration ms", "\(age(of: request))"),
                ]
            }
        }
        return lines.map { $0.0.isEmpty ? "************************" : ($0.0 + ":").padding(21) + $0.1 }
            .joined(separator: "\n") + "\n"
    }

    private func age(of request: LoopActivity.Request) -> Int {
        Int(max(0, now.microseconds - request.startedAt) / 1000)
    }

    /// Control characters (a decoded `%0A` in a path) shown as `?`, so a line stays a line.
    private static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) })
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
