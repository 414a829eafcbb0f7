import Foundation

/// USD held as whole nano-dollars so that `spent + reserved ≤ limit` is exact, never a rounding question.
public struct NanoUSD: Hashable, Comparable, Codable, Sendable, AdditiveArithmetic {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }
    /// Rounds up: a reservation or charge is never smaller than the true price. Saturates:
    /// an amount past ±$9.2 billion pins to the range, and NaN reads as the most (a price
    /// nobody can tell is never taken for a small one), so no input traps here.
    public init(usd: Double) { self.value = Int64(saturating: (usd * 1e9).rounded(.up), nan: .max) }

    /// A budget limit: rounds down (a limit is never larger than the one given); saturates like `init(usd:)` but NaN reads as zero.
    public init(limitUSD usd: Double) { self.value = Int64(saturating: (usd * 1e9).rounded(.down)) }

    public var usd: Double { Double(value) / 1e9 }
    public static var zero: NanoUSD { NanoUSD(0) }
    /// Sums and differences saturate (see ``Saturating``): far past any budget, never a trap.
    public static func + (a: NanoUSD, b: NanoUSD) -> NanoUSD { NanoUSD(a.value.addingSaturated(b.value)) }
    public static func - (a: NanoUSD, b: NanoUSD) -> NanoUSD { NanoUSD(a.value.subtractingSaturated(b.value)) }
    public static func < (a: NanoUSD, b: NanoUSD) -> Bool { a.value < b.value }
}

/// An amount on both budget axes.
public struct Amount: Equatable, Codable, Sendable {
    public var tokens: Int
    public var usd: NanoUSD

    public init(tokens: Int, usd: NanoUSD) {
        self.tokens = tokens
        self.usd = usd
    }

    public static let zero = Amount(tokens: 0, usd: .zero)

    /// Component-wise sum, saturating.
    public static func + (a: Amount, b: Amount) -> Amount {
        Amount(tokens: a.tokens.addingSaturated(b.tokens), usd: a.usd + b.usd)
    }

    /// Component-wise difference, saturating.
    public static func - (a: Amount, b: Amount) -> Amount {
        Amount(tokens: a.tokens.subtractingSaturated(b.tokens), usd: a.usd - b.usd)
    }

    /// Component-wise minimum: what is charged when usage is clamped to a reservation.
    public func clamped(to cap: Amount) -> Amount {
        Amount(tokens: min(max(tokens, 0), cap.tokens), usd: min(max(usd, .zero), cap.usd))
    }
}

public enum BudgetError: Error, Equatable, CustomStringConvertible {
    case wouldExceed(needed: Amount, available: Amount)
    case duplicateReservation(AttemptID)

    public var description: String {
        switch self {
        case .wouldExceed(let needed, let available):
            return "reservation of \(needed.tokens) tokens / $\(needed.usd.usd) does not fit what is left (\(available.tokens) tokens / $\(available.usd.usd))"
        case .duplicateReservation(let id):
            return "attempt \(id) already holds a reservation"
        }
    }
}

/// The per-job budget: hard caps, reservations before dispatch, charges on completion.
///
/// Invariant, on both axes, after every call: `spent + reserved ≤ limit`. Reservations are the
/// attempt's worst case; a charge is the actual usage clamped to the reservation (a worker can
/// never be charged past what was set aside for it), and what is left of the reservation is
/// released. A lost attempt is charged its whole reservation.
public struct BudgetLedger: Sendable, Equatable {
    /// `nil` on an axis means no limit there.
    public let limitTokens: Int?
    public let limitUSD: NanoUSD?
    public private(set) var spent: Amount = .zero
    public private(set) var reservations: [AttemptID: Amount] = [:]
    /// The sum of `reservations`, kept as they change.
    public private(set) var reserved: Amount = .zero

    public init(limit: Budget) {
        self.limitTokens = limit.tokens
        self.limitUSD = limit.usd.map { NanoUSD(limitUSD: $0) }
    }

    public init(limitTokens: Int?, limitUSD: NanoUSD?, spent: Amount = .zero, reservations: [AttemptID: Amount] = [:]) {
        self.limitTokens = limitTokens
        self.limitUSD = limitUSD
        self.spent = spent
        self.reservations = reservations
        self.reserved = reservations.values.reduce(.zero, +)
    }

    /// What can still be reserved on each axis (`Int.max` / `Int64.max` where unlimited).
    public var available: Amount {
        let r = reserved
        return Amount(
            tokens: limitTokens.map { $0.subtractingSaturated(spent.tokens).subtractingSaturated(r.tokens) } ?? Int.max,
            usd: limitUSD.map { $0 - spent.usd - r.usd } ?? NanoUSD(Int64.max)
        )
    }

    public func fits(_ amount: Amount) -> Bool {
        let a = available
        return amount.tokens <= a.tokens && amount.usd <= a.usd
    }

    /// Sets aside the worst case of an attempt before it is dispatched.
    public mutating func reserve(_ amount: Amount, for id: AttemptID) throws(BudgetError) {
        if reservations[id] != nil { throw .duplicateReservation(id) }
        guard fits(amount) else { throw .wouldExceed(needed: amount, available: available) }
        reservations[id] = amount
        reserved = reserved + amount
    }

    /// Charges the actual usage of a finished attempt (clamped to its reservation) and releases
    /// the rest. Returns what was charged; zero for an attempt holding no reservation (a late
    /// or duplicate result, which must not be charged twice).
    @discardableResult
    public mutating func charge(_ usage: Amount, for id: AttemptID) -> Amount {
        guard let held = reservations.removeValue(forKey: id) else { return .zero }
        reserved = reserved - held
        let charged = usage.clamped(to: held)
        spent = spent + charged
        return charged
    }

    /// A lost attempt (its worker died, its result never came): its whole reservation is spent.
    @discardableResult
    public mutating func chargeInFull(_ id: AttemptID) -> Amount {
        guard let held = reservations[id] else { return .zero }
        return charge(held, for: id)
    }

    public func holds(_ id: AttemptID) -> Bool { reservations[id] != nil }

    /// True when the invariant holds (it always should; tests and assertions check it).
    public var isConsistent: Bool {
        let r = reservations.values.reduce(Amount.zero, +)
        if r != reserved { return false }
        if let l = limitTokens, spent.tokens.addingSaturated(r.tokens) > l { return false }
        if let l = limitUSD, spent.usd + r.usd > l { return false }
        return spent.tokens >= 0 && spent.usd >= .zero
    }
}
