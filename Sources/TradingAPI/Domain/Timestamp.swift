/// A point in time as microseconds since the Unix epoch, as the queries select it.
public struct Timestamp: Comparable, Hashable, Sendable {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    /// RFC 3339 in UTC with `Z`: whole seconds (`2025-10-26T12:34:56Z`) when the fraction is
    /// zero, else the fraction with trailing zeros trimmed (`…:56.123Z`).
    public var rfc3339: String {
        let seconds = microseconds.floorDiv(1_000_000)
        let fraction = Int(microseconds - seconds * 1_000_000)
        let days = seconds.floorDiv(86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = Self.civilDate(daysSinceEpoch: days)
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
        text += "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
        if fraction != 0 {
            var digits = pad(fraction, 6)
            while digits.last == "0" { digits.removeLast() }
            text += "." + digits
        }
        return text + "Z"
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    /// The first instant after `seconds` have passed since this one: when a row stamped with it
    /// leaves a window of that length (`created_at >= now() - window`).
    func leavingWindow(ofSeconds seconds: Int64) -> Timestamp {
        Timestamp(microseconds: microseconds + seconds * 1_000_000 + 1)
    }

    /// Parses RFC 3339 (`2025-10-26T12:34:56Z`, `…:56.123456+02:00`; `T`/`Z` in either case),
    /// years 0001–9999, no leap second. Fractions finer than a microsecond are rounded to the
    /// nearest, as Postgres rounds them. `nil` for anything else.
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= b.count else { return nil }
            var value: Int64 = 0
            for i in range {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                value = value * 10 + Int64(b[i] - 0x30)
            }
            return value
        }
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] | 0x20 == 0x74, b[13] == 0x3a, b[16] == 0x3a,
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              year >= 1, (1...12).contains(month), hour < 24, minute < 60, second < 60,
              (1...Self.daysIn(month: month, year: year)).contains(day) else { return nil }
        var index = 19
        var microseconds: Int64 = 0
        if b[index] == 0x2e {
            index += 1
            var digits = 0
            var scaled: Int64 = 0
            while index < b.count, (0x30...0x39).contains(b[index]), digits < 9 {
                scaled = scaled * 10 + Int64(b[index] - 0x30)
                digits += 1
                index += 1
            }
            guard digits > 0, index < b.count, !(0x30...0x39).contains(b[index]) else { return nil }
            for _ in digits..<9 { scaled *= 10 }
            microseconds = (scaled + 500) / 1000
        }
        guard index < b.count else { return nil }
        var offsetSeconds: Int64 = 0
        if b[index] | 0x20 == 0x7a {
            index += 1
        } else {
            guard b[index] == 0x2b || b[index] == 0x2d, index + 6 == b.count, b[index + 3] == 0x3a,
                  let offsetHours = number(index + 1..<index + 3), let offsetMinutes = number(index + 4..<index + 6),
                  offsetHours < 24, offsetMinutes < 60 else { return nil }
            offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (b[index] == 0x2d ? -1 : 1)
            index += 6
        }
        guard index == b.count else { return nil }
        let days = Self.daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        self.init(microseconds: seconds * 1_000_000 + microseconds)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Howard Hinnant's days-from-civil algorithm, the inverse of `civilDate`.
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = z.floorDiv(146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }
}

private func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

extension Int64 {
    fileprivate func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
