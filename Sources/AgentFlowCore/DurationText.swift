import Foundation

/// Parses a duration such as `90`, `30s`, `5m`, `1.5h` or `1h30m` into seconds.
public func parseDuration(_ text: String) -> Double? {
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

/// Formats seconds compactly for people: `850ms`, `42s`, `5m03s`, `1h12m`.
public func formatDuration(_ seconds: Double) -> String {
    if seconds < 0 { return "-" + formatDuration(-seconds) }
    if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
}
