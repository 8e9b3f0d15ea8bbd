import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp for one test, removed by `remove()`. Its name is short because
/// unix socket paths must fit 108 bytes.
public struct TemporaryDirectory: Sendable {
    public let path: String

    /// `prefix` names the test target in the directory's name (`/tmp/<prefix>-XXXXXX`).
    public init(prefix: String) throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        path = String(cString: created)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
