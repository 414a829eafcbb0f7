import Foundation

/// Parses a duration such as `90` (seconds), `30s`, `5m`, `1.5h`, `2d` or `1h30m`. Nil when the
/// text is not one, or is zero, under a nanosecond, negative, NaN or infinite. A finite span
/// longer than ``longestParsedDuration`` reads as that: every duration the product takes is then
/// range-checked (``Limits/span(_:_:_:text:)``) far below it, so an absurd one (`1e300`) is
/// refused with the text as written, never wrapped or trapped.
public func parseDuration(_ text: String) -> Duration? {
    guard let seconds = parseDurationSeconds(text) else { return nil }
    let nanoseconds = Int64((min(seconds, longestParsedDuration.seconds) * 1e9).rounded())
    return nanoseconds > 0 ? .nanoseconds(nanoseconds) : nil
}

/// The longest span ``parseDuration(_:)`` returns: 10⁹ s (about 31 years).
public let longestParsedDuration: Duration = .seconds(1_000_000_000)

/// The number of seconds a duration's text says (nil: not a positive, finite duration).
func parseDurationSeconds(_ text: String) -> Double? {
    let s = text.trimmingCharacters(in: .whitespaces)
    if s.isEmpty { return nil }
    if let plain = Double(s) { return plain > 0 && plain.isFinite ? plain : nil }
    var total = 0.0
    var number = ""
    var sawUnit = false
    for ch in s {
        if ch.isNumber || ch == "." {
            number.append(ch)
        } else {
            guard let value = Double(number), value >= 0 else { return nil }
            switch ch {
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            case "d": total += value * 86400
            default: return nil
            }
            number = ""
            sawUnit = true
        }
    }
    guard sawUnit, number.isEmpty, total > 0, total.isFinite else { return nil }
    return total
}

/// A span as a config file or flag would write it, for messages: `10ms`, `300s`, `1h`, `30d`.
public func durationText(_ span: Duration) -> String {
    let (s, atto) = span.components
    guard s >= 0, s < 9_000_000_000 else { return "\(span.seconds)s" }
    let ns = s * 1_000_000_000 + atto / 1_000_000_000
    let day: Int64 = 86_400 * 1_000_000_000, hour: Int64 = 3_600 * 1_000_000_000, second: Int64 = 1_000_000_000
    if ns >= day && ns % day == 0 { return "\(ns / day)d" }
    if ns >= 1_000 * second && ns % hour == 0 { return "\(ns / hour)h" }
    if ns % second == 0 { return "\(ns / second)s" }
    if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
    return "\(ns)ns"
}

/// Formats seconds compactly for people: `850ms`, `42s`, `5m03s`, `1h12m`.
public func formatDuration(_ seconds: Double) -> String {
    if seconds < 0 { return "-" + formatDuration(-seconds) }
    if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
}
