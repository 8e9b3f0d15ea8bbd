extension StringProtocol {
    /// `utf8.allSatisfy(predicate)`, over the string's contiguous UTF-8 when it has it (native
    /// strings do): a plain loop over the bytes costs a fraction of the UTF-8 view's iterator
    /// (`bench/profile.sh`: the escape check of `JSONWriter.string` was 19k instructions of an
    /// uncached status request).
    func utf8AllSatisfy(_ predicate: (UInt8) -> Bool) -> Bool {
        utf8.withContiguousStorageIfAvailable { $0.allSatisfy(predicate) } ?? utf8.allSatisfy(predicate)
    }
}

extension UInt8 {
    /// `0-9`, `A-F` or `a-f`.
    var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}

extension Sequence<UInt8> {
    /// Two lowercase hex digits per byte.
    var hexDigits: String {
        var text = ""
        for byte in self {
            text.unicodeScalars.append(Unicode.Scalar(Self.digit(byte >> 4)))
            text.unicodeScalars.append(Unicode.Scalar(Self.digit(byte & 0x0f)))
        }
        return text
    }

    private static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
    }
}
