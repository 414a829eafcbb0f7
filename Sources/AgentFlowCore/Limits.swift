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
    /// `coordinator.prefetch`: attempts per slot a worker holds queued behind its busy slots.
    public static let maxPrefetch = 4
    /// GPUs one worker may list.
    public static let maxGPUs = 256
    /// Characters in a worker or host name.
    public static let maxNameLength = 64
    /// Tokens one attempt may use (`maxTokens`) or be expected to use (`estimates.*.tokens`): far
    /// above any model's context times any number of turns, far below where sums overflow.
    public static let maxAttemptTokens = 1_000_000_000
    /// Attempts of one subtask (`maxAttempts`).
    public static let maxAttempts = 1_000_000
    /// Agent turns of one attempt (`scaffold.maxTurns`).
    public static let maxTurns = 1_000
    /// USD per million tokens (a model's `price`): about twenty times the dearest model sold.
    public static let maxPricePerMillion = 10_000.0
    /// A model's context length in tokens.
    public static let maxContext = 1_000_000_000
    /// Job priority, either way.
    public static let maxPriority = 1_000_000
    /// `coordinator.liveness`: heartbeats missed before a worker is dead.
    public static let maxLiveness = 1_000
    /// The sim backend's real seconds per simulated second.
    public static let maxTimeScale = 1_000_000.0
    /// GPU ids a worker may list.
    public static let maxGPUID = 1 << 20

    public static func budgetTokens(_ v: Int) -> String? {
        (1...maxBudgetTokens).contains(v) ? nil : "the token budget must be from 1 to \(maxBudgetTokens), got \(v)"
    }

    /// Amounts are kept in whole nano-dollars, so a budget under one cannot be honoured.
    public static func budgetUSD(_ v: Double) -> String? {
        v.isFinite && (v * 1e9).rounded(.down) >= 1 && v <= maxBudgetUSD ? nil : "the USD budget must be from 0.000000001 to \(Int(maxBudgetUSD)), got \(v)"
    }

    public static func seconds(_ v: Double, _ what: String) -> String? {
        v.isFinite && v > 0 && v <= maxSeconds ? nil : "\(what) must be above 0 s and at most 30 days, got \(v)"
    }

    /// A whole number in `range` (`what` names it in the message).
    public static func count(_ v: Int, _ range: ClosedRange<Int>, _ what: String) -> String? {
        range.contains(v) ? nil : "\(what) must be from \(range.lowerBound) to \(range.upperBound), got \(v)"
    }

    /// A finite number in `range`.
    public static func number(_ v: Double, _ range: ClosedRange<Double>, _ what: String) -> String? {
        v.isFinite && range.contains(v) ? nil : "\(what) must be a finite number from \(decimal(range.lowerBound)) to \(decimal(range.upperBound)), got \(v)"
    }

    /// Token cap of one attempt (`maxTokens`).
    public static func attemptTokens(_ v: Int, _ what: String) -> String? { count(v, 1...maxAttemptTokens, what) }

    /// A (subtask, model) estimate: success in [0, 1], tokens in (0, 10⁹], seconds in [0, 30 days].
    public static func estimate(success: Double, tokens: Double, seconds: Double, _ what: String) -> String? {
        if let p = probability(success, "success \(what)") { return p }
        if !(tokens.isFinite && tokens > 0 && tokens <= Double(maxAttemptTokens)) {
            return "tokens \(what) must be above 0 and at most \(maxAttemptTokens), got \(tokens)"
        }
        return number(seconds, 0...maxSeconds, "seconds \(what)")
    }

    /// A model price in USD per million tokens: 0 (self-hosted) up to ``maxPricePerMillion``.
    public static func price(_ v: Double, _ what: String) -> String? { number(v, 0...maxPricePerMillion, what) }

    /// A tenant's fair-share weight: usage is divided by it, so a subnormal one would make every share infinite.
    public static func tenantWeight(_ v: Double, _ what: String) -> String? {
        v.isFinite && v >= 1e-6 && v <= 1e6 ? nil : "\(what) must be from 0.000001 to 1e6, got \(v)"
    }

    /// Job priority.
    public static func priority(_ v: Int) -> String? { count(v, -maxPriority...maxPriority, "the priority") }

    /// A heartbeat interval: 10 ms to an hour (shorter spins the loop, longer never notices a death).
    public static let heartbeatRange: ClosedRange<Duration> = .milliseconds(10) ... .seconds(3_600)
    /// Deadlines and other spans taken from outside: above zero, at most 30 days (``maxSeconds``).
    public static let spanRange: ClosedRange<Duration> = .nanoseconds(1) ... .seconds(30 * 86_400)

    /// A span read from a flag or a file (`text`, as written: it is quoted back) within `range`.
    public static func span(_ d: Duration, _ range: ClosedRange<Duration>, _ what: String, text: String) -> String? {
        if range.contains(d) { return nil }
        let bounds = range.lowerBound <= .nanoseconds(1) ? "above 0s and at most \(durationText(range.upperBound))"
            : "between \(durationText(range.lowerBound)) and \(durationText(range.upperBound))"
        return "\(what) must be \(bounds), got \(printable(text))"
    }

    /// A file name shown in messages and stored with a job: 1–200 printable characters.
    public static func fileName(_ s: String, _ what: String) -> String? {
        let ok = !s.isEmpty && s.utf8.count <= 200 && !s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
        return ok ? nil : "\(what) must be 1 to 200 printable characters, got \(printable(s))"
    }

    static func decimal(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)"
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
