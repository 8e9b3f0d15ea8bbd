/// `If-None-Match` evaluation (RFC 9110 §13.1.2).
enum EntityTag {
    /// True when `header` (`*`, or a comma-separated list of tags) names `current`, a quoted strong
    /// tag. The comparison is the weak one the RFC prescribes for `If-None-Match`: `W/"x"` matches `"x"`.
    static func list(_ header: String, matches current: String) -> Bool {
        for candidate in header.split(separator: ",") {
            var tag = candidate.drop(while: { $0 == " " || $0 == "\t" })
            while let last = tag.last, last == " " || last == "\t" { tag = tag.dropLast() }
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            if tag == current { return true }
        }
        return false
    }
}
