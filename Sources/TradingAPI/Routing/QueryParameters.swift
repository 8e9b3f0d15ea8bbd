/// The query string's parameters, percent-decoded; the first occurrence of a name wins.
public struct QueryParameters: Sendable {
    private var pairs: [(name: String, value: String)] = []

    public init(_ query: String) {
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(pieces[0]) else { continue }
            let value = pieces.count > 1 ? Self.decode(pieces[1]) : ""
            pairs.append((name, value ?? "\u{FFFD}"))  // undecodable: kept so validation rejects it
        }
    }

    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// A whole number in `range` written as plain decimal digits, `defaultValue` when absent.
    public func integer(_ name: String, in range: ClosedRange<Int>, default defaultValue: Int) throws(APIError) -> Int {
        guard let text = self[name] else { return defaultValue }
        guard let value = Self.plainInteger(text), range.contains(value) else {
            throw .badRequest("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// Plain decimal digits only (no sign, spaces or exponent) that fit a 64-bit integer.
    public static func plainInteger<S: StringProtocol>(_ text: S) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8AllSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    /// Percent-decoding with `+` as space; `nil` for bad escapes or invalid UTF-8.
    static func decode(_ text: Substring) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: byte - 0x30
    case 0x41...0x46: byte - 0x41 + 10
    case 0x61...0x66: byte - 0x61 + 10
    default: nil
    }
}
