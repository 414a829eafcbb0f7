import Foundation

/// Range checks for every number and name that comes from outside (flags, workflow files,
/// client requests, worker messages). Each is checked once, where it enters; past that point
/// the arithmetic on it cannot overflow or trap. A check returns the problem in words, or `nil`.
public enum Limits {
    /// 10¹² tokens and $10⁶: far above any real job, far below where nano-dollar sums overflow.
    public static let maxBudgetTokens = 1_000_000_000_000
    public static let maxBudgetUSD = 1_000_000.0
    /// Deadlines and durations: at most 30 days.
    public static let maxSeconds = 30.0 * 86_400
    /// Samples of one subtask launched at once (`seq:K`, a planner's launch).
    public static let maxSamples = 64
    /// Slots one worker may offer.
    public static let maxSlots = 1024
    /// GPUs one worker may list.
    public static let maxGPUs = 256
    /// Characters in a worker or host name.
    public static let maxNameLength = 64

    public static func budgetTokens(_ v: Int) -> String? {
        (1...maxBudgetTokens).contains(v) ? nil : "the token budget must be from 1 to \(maxBudgetTokens), got \(v)"
    }

    public static func budgetUSD(_ v: Double) -> String? {
        v.isFinite && v > 0 && v <= maxBudgetUSD ? nil : "the USD budget must be above 0 and at most \(Int(maxBudgetUSD)), got \(v)"
    }

    public static func seconds(_ v: Double, _ what: String) -> String? {
        v.isFinite && v > 0 && v <= maxSeconds ? nil : "\(what) must be above 0 s and at most 30 days, got \(v)"
    }

    public static func probability(_ v: Double, _ what: String) -> String? {
        v.isFinite && (0...1).contains(v) ? nil : "\(what) must be in [0, 1], got \(v)"
    }

    /// Worker and host names: 1–64 letters, digits, '.', '_', '-' (they reach terminals and logs).
    public static func name(_ s: String, _ what: String) -> String? {
        let ok = !s.isEmpty && s.count <= maxNameLength
            && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
        return ok ? nil : "\(what) must be 1 to \(maxNameLength) characters of A-Z, a-z, 0-9, '.', '_', '-', got \(printable(s))"
    }

    /// A string from outside as it may be shown: control characters escaped, at most 64 characters.
    public static func printable(_ s: String, limit: Int = 64) -> String {
        var out = ""
        for u in s.unicodeScalars.prefix(limit) {
            if u.value < 0x20 || u.value == 0x7f { out += String(format: "\\x%02x", u.value) } else { out.unicodeScalars.append(u) }
        }
        if s.unicodeScalars.count > limit { out += "… (\(s.utf8.count) bytes)" }
        return "'\(out)'"
    }
}
