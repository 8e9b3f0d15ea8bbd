/// `POST /api/v1/session` and `DELETE /api/v1/session`: how a browser's `EventSource`, which
/// cannot send an `Authorization` header, opens the live stream without putting the token in a
/// URL (URLs end up in logs and histories).
///
/// `POST` with the token in `Authorization` answers 204 with the token in a cookie that only the
/// stream ever receives: `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
/// sends it), `Path=/api/v1/stream`, `Max-Age` = the token's remaining lifetime, and `Secure`
/// when the client came over TLS. `DELETE` clears it. The stream takes the `Authorization`
/// header first, the cookie otherwise; no other endpoint reads cookies.
enum StreamSession {
    static let cookieName = "trading_api_stream"
    static let cookiePath = "/api/v1/" + Router.streamPath

    static func open(token: VerifiedToken, credentials: String, now: Double, overTLS: Bool) -> APIResponse {
        let maxAge = max(0, Int((token.expiresAt - now).rounded(.down)))
        return APIResponse(status: 204, headers: [("Set-Cookie", cookie(credentials, maxAge: maxAge, secure: overTLS)),
                                                  ("Cache-Control", "no-store")], body: [])
    }

    static func close(overTLS: Bool) -> APIResponse {
        APIResponse(status: 204, headers: [("Set-Cookie", cookie("", maxAge: 0, secure: overTLS)),
                                           ("Cache-Control", "no-store")], body: [])
    }

    private static func cookie(_ value: String, maxAge: Int, secure: Bool) -> String {
        "\(cookieName)=\(value); Path=\(cookiePath); Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// The session cookie's value in a `Cookie` header (`a=1; trading_api_stream=<jwt>`), `nil`
    /// when absent or empty.
    static func token(inCookieHeader header: String) -> String? {
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix(cookieName + "=") else { continue }
            let value = trimmed.dropFirst(cookieName.count + 1)
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }
}
