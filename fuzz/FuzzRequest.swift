// libFuzzer target over the request parsing a worker does itself, from nginx's FastCGI
// parameters to the answer: the FastCGI → APIRequest adaptation (`APIRequest(cgiParameter:)`), request-id
// sanitising, routing, the Bearer header, the JWT (base64url, header JSON, HMAC, claims JSON,
// the UUID), the memo of verified tokens, query-string decoding and parameter validation, the
// cache key, and the JSON error bodies — through the real `TradingService.handle` with the
// database unreachable (so every request that gets past validation ends as a 503).
//
// Input: byte 0 is a set of flags, the rest NUL-separated `NAME=VALUE` entries, as libfcgi
// hands a worker nginx's parameters (REQUEST_METHOD, DOCUMENT_URI, REQUEST_URI, QUERY_STRING,
// HTTP_AUTHORIZATION, REQUEST_ID, ...). Flag bit 0: append a valid HS256 signature (made with
// the fuzz secret) to HTTP_AUTHORIZATION, so the claims parser and everything after the
// signature check is reached; without it only a forged token could get there.
//
// Oracles (a violation traps, and libFuzzer saves the input):
// - the request id is 1-64 characters of [0-9A-Fa-f-];
// - no 500: every answer is 200/400/401/404/405/503 with a JSON body; an error body is exactly
//   {"error","message","request_id"} with that request id; no header carries CR, LF or NUL;
// - a verified user is a lowercase UUID; the memo and the verifier agree on every token;
// - a cache key is at most 250 bytes of printable ASCII without spaces (memcached's rule) and
//   starts with the user's segment;
// - JSONWriter escapes any string so that JSONDecoder reads back the same string.
//
// Build and run: fuzz/run.sh (swiftc -sanitize=fuzzer,address -parse-as-library ...).

import Crypto
import FoundationEssentials
import Logging
import Postgres

/// What `APIRequest.init(cgiParameter:)` reads of libfcgi's request in the worker: the
/// value of a parameter, the first one of that name (FCGX_GetParam), as a Swift String
/// (invalid UTF-8 repaired, as `String(cString:)` does).
struct FastCGIRequest {
    let entries: [(name: String, value: String)]

    func param(_ name: String) -> String? {
        entries.first { $0.name == name }?.value
    }
}

private let secret = "fuzz-secret-fuzz-secret-fuzz-secret!"
private let now: Double = 1_700_000_000
private let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
private let verifier = JWTVerifier(secret: secret)
private let cursors = CursorCodec(secret: secret)
nonisolated(unsafe) private let authenticator = Authenticator(verifier: verifier, capacity: 64)
nonisolated(unsafe) private let service = TradingService(
    database: PostgresConnection(configuration: .init(
        url: "host=/nonexistent-fuzz-socket-dir dbname=fuzz", connectTimeoutSeconds: 1,
        statementTimeoutMilliseconds: 100, applicationName: "fuzz",
        reconnectIntervalMilliseconds: 3_600_000)),
    cache: .uncached(),
    secret: secret, logger: quiet, clock: { now })
private let signingKey = SymmetricKey(data: Array(secret.utf8))

private func base64URL(_ bytes: some Sequence<UInt8>) -> String {
    var text = ""
    for character in Data(bytes).base64EncodedString() {
        switch character {
        case "+": text.append("-")
        case "/": text.append("_")
        case "=": continue
        default: text.append(character)
        }
    }
    return text
}

/// `Bearer H.P` → `Bearer H.P.<HS256 of "H.P">`: the signing input is what follows the last space.
private func signed(_ authorization: String) -> String {
    let start = authorization.lastIndex(of: " ").map { authorization.index(after: $0) } ?? authorization.startIndex
    let signingInput = authorization[start...]
    let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: signingKey)
    return authorization + "." + base64URL(mac)
}

private func isRequestIDByte(_ byte: UInt8) -> Bool {
    (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte) || byte == 0x2d
}

private func checkHeaders(_ headers: [(String, String)]) {
    for (name, value) in headers {
        precondition(!name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") },
                     "bad header name \(name)")
        precondition(!value.utf8.contains { $0 == 0x0d || $0 == 0x0a || $0 == 0 }, "CR/LF/NUL in header \(name)")
    }
}

private func checkResponse(_ response: APIResponse, requestID: String) {
    let allowed: Set<Int> = [200, 400, 401, 404, 405, 503]
    precondition(allowed.contains(response.status), "unexpected status \(response.status)")
    checkHeaders(response.headers)
    guard let body = try? JSONDecoder().decode([String: String].self, from: Data(response.body)) else {
        preconditionFailure("body is not a JSON object of strings: \(String(decoding: response.body, as: UTF8.self))")
    }
    if Set(body.keys) == ["status", "database", "cache"] {   // the health check (200, or 503: no database)
        precondition(response.status == 200 || response.status == 503, "health status \(response.status)")
        return
    }
    precondition(response.status != 200, "a view answered 200 without a database")
    precondition(Set(body.keys) == ["error", "message", "request_id"], "error body keys \(body.keys)")
    precondition(body["request_id"] == requestID, "request_id differs")
    if response.status == 401 { precondition(response.headers.contains { $0 == ("WWW-Authenticate", "Bearer") }) }
    if response.status == 405 { precondition(response.headers.contains { $0.0 == "Allow" }) }
    if response.status == 503 { precondition(response.headers.contains { $0.0 == "Retry-After" }) }
}

private func checkJSONWriter(_ strings: [String]) {
    var json = JSONWriter(capacity: 256)
    json.object { json in
        json.field("a", strings.count > 0 ? strings[0] : "")
        json.field("b", strings.count > 1 ? strings[1] : "")
        json.field("c", strings.count > 2 ? strings[2] : "")
    }
    guard let back = try? JSONDecoder().decode([String: String].self, from: Data(json.bytes)) else {
        preconditionFailure("JSONWriter wrote invalid JSON: \(String(decoding: json.bytes, as: UTF8.self))")
    }
    precondition(back["a"] == (strings.count > 0 ? strings[0] : ""), "JSONWriter changed a string")
    precondition(back["b"] == (strings.count > 1 ? strings[1] : ""), "JSONWriter changed a string")
    precondition(back["c"] == (strings.count > 2 ? strings[2] : ""), "JSONWriter changed a string")
}

/// The parts of `TradingService.handle` before the database, checked one by one.
private func checkPipeline(_ request: APIRequest) {
    guard case .view(let endpoint, let pathSegment)? = try? Router.route(method: request.method, path: request.path) else { return }
    let direct = try? verifier.verify(authorization: request.authorization, now: now)
    let memo = try? authenticator.authenticate(request.authorization, now: now)
    let again = try? authenticator.authenticate(request.authorization, now: now)
    precondition(direct == memo && memo == again, "the token memo disagrees with the verifier")
    guard let user = memo?.user else { return }
    precondition(user.uuid.utf8.count == 36 && user.uuid == user.uuid.lowercased() && UserID(user.uuid) == user,
                 "user id not a lowercase UUID")
    guard let view = try? ViewRequest(endpoint, pathSegment: pathSegment, query: request.query,
                                      context: ParameterContext(user: user, cursors: cursors), now: Timestamp(microseconds: 0))
    else { return }
    let key = view.cacheKey
    precondition(key.utf8.count <= 250 && key.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }, "bad memcached key \(key)")
    precondition(key.contains(":\(user.uuid)"), "the cache key lacks the user")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let flags = bytes.first else { return 0 }
    var entries: [(name: String, value: String)] = []
    for entry in bytes.dropFirst().split(separator: 0, omittingEmptySubsequences: true) {
        let text = String(decoding: entry, as: UTF8.self)
        guard let equals = text.firstIndex(of: "=") else { continue }
        let name = String(text[..<equals])
        var value = String(text[text.index(after: equals)...])
        if flags & 1 != 0, name == "HTTP_AUTHORIZATION" { value = signed(value) }
        entries.append((name, value))
    }

    let request = APIRequest(cgiParameter: FastCGIRequest(entries: entries).param)
    precondition((1...64).contains(request.requestID.utf8.count) && request.requestID.utf8.allSatisfy(isRequestIDByte),
                 "request id not sanitised: \(request.requestID)")

    checkPipeline(request)
    checkResponse(service.handle(request), requestID: request.requestID)
    checkJSONWriter([request.path, request.query, request.authorization ?? ""])
    return 0
}
