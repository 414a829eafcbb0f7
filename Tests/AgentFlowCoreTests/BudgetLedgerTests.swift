import AgentFlowCore
import Foundation
import Testing

/// A tiny seeded generator so property tests replay exactly.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct BudgetLedgerTests {
    func id(_ n: Int) -> AttemptID { AttemptID(job: "j", subtask: "s\(n % 7)", n: n) }

    @Test func reserveChargeRelease() throws {
        var l = BudgetLedger(limit: Budget(tokens: 1000, usd: 1))
        try l.reserve(Amount(tokens: 600, usd: NanoUSD(usd: 0.5)), for: id(1))
        #expect(l.available.tokens == 400)
        #expect(throws: BudgetError.self) { try l.reserve(Amount(tokens: 500, usd: .zero), for: id(2)) }
        let charged = l.charge(Amount(tokens: 250, usd: NanoUSD(usd: 0.1)), for: id(1))
        #expect(charged.tokens == 250)
        #expect(l.spent.tokens == 250)
        #expect(l.reserved == .zero)
        #expect(l.available.tokens == 750)
        // A second result for the same attempt is not charged again.
        #expect(l.charge(Amount(tokens: 250, usd: .zero), for: id(1)) == .zero)
        #expect(l.spent.tokens == 250)
    }

    @Test func overReportIsClampedToTheReservation() throws {
        var l = BudgetLedger(limit: Budget(tokens: 1000))
        try l.reserve(Amount(tokens: 300, usd: .zero), for: id(1))
        #expect(l.charge(Amount(tokens: 5000, usd: .zero), for: id(1)).tokens == 300)
        #expect(l.spent.tokens == 300)
    }

    @Test func lostAttemptIsChargedInFull() throws {
        var l = BudgetLedger(limit: Budget(tokens: 1000, usd: 0.01))
        let a = Amount(tokens: 400, usd: NanoUSD(usd: 0.004))
        try l.reserve(a, for: id(1))
        #expect(l.chargeInFull(id(1)) == a)
        #expect(l.spent == a)
        #expect(l.reserved == .zero)
    }

    @Test func duplicateReservationIsRejected() throws {
        var l = BudgetLedger(limit: Budget(tokens: 1000))
        try l.reserve(Amount(tokens: 1, usd: .zero), for: id(1))
        #expect(throws: BudgetError.duplicateReservation(id(1))) { try l.reserve(Amount(tokens: 1, usd: .zero), for: id(1)) }
    }

    /// Random interleavings of reservations, charges (honest, over-reported, negative),
    /// losses and releases: `spent + reserved ≤ limit` holds after every single event.
    @Test(arguments: 0..<40)
    func invariantHoldsUnderRandomEvents(seed: Int) throws {
        var rng = TestRNG(state: UInt64(seed) &* 7919 &+ 17)
        let limitTokens = Int.random(in: 500...20_000, using: &rng)
        let limitUSD = Double.random(in: 0.001...0.05, using: &rng)
        var l = BudgetLedger(limit: Budget(tokens: Bool.random(using: &rng) ? limitTokens : nil,
                                           usd: Bool.random(using: &rng) ? limitUSD : nil))
        var open: [AttemptID] = []
        var next = 0
        var chargedTotal = Amount.zero
        for _ in 0..<600 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                next += 1
                let tokens = Int.random(in: 1...3000, using: &rng)
                let amount = Amount(tokens: tokens, usd: NanoUSD(usd: Double(tokens) * 0.1 / 1_000_000))
                let fitted = l.fits(amount)
                do {
                    try l.reserve(amount, for: id(next))
                    #expect(fitted)
                    open.append(id(next))
                } catch {
                    #expect(!fitted)
                }
            case 4..<8 where !open.isEmpty:
                let i = Int.random(in: 0..<open.count, using: &rng)
                let usage = Amount(tokens: Int.random(in: -100...4000, using: &rng), usd: NanoUSD(Int64.random(in: -1000...2_000_000, using: &rng)))
                let c = l.charge(usage, for: open.remove(at: i))
                chargedTotal = Amount(tokens: chargedTotal.tokens + c.tokens, usd: chargedTotal.usd + c.usd)
            case 8 where !open.isEmpty:
                let c = l.chargeInFull(open.removeLast())
                chargedTotal = Amount(tokens: chargedTotal.tokens + c.tokens, usd: chargedTotal.usd + c.usd)
            case 9 where !open.isEmpty:
                _ = l.charge(.zero, for: open.removeFirst())
            default:
                // A late result for an attempt that already ended: never charged.
                #expect(l.charge(Amount(tokens: 10, usd: NanoUSD(10)), for: id(Int.random(in: 0...max(0, next - open.count - 1), using: &rng) - 1_000_000)) == .zero)
            }
            #expect(l.isConsistent)
            if let t = l.limitTokens { #expect(l.spent.tokens + l.reserved.tokens <= t) }
            if let u = l.limitUSD { #expect(l.spent.usd + l.reserved.usd <= u) }
        }
        #expect(l.spent == chargedTotal)
    }
}

@Suite struct DeadlineTests {
    @Test func attemptDeadlineIsTheSoonerOfJobAndPlan() {
        #expect(Deadlines.attemptDeadline(job: 100, plannedEnd: 80) == 80)
        #expect(Deadlines.attemptDeadline(job: 100, plannedEnd: 120) == 100)
        #expect(Deadlines.attemptDeadline(job: 100, plannedEnd: nil) == 100)
    }
}
