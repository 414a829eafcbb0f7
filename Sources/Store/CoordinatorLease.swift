import AgentFlowCore
import Foundation

/// Several coordinators on one PostgreSQL database, one leader (DESIGN §12, issue 21): the
/// leader holds a lease — one row naming its epoch and when the lease expires, by the
/// database's clock — and every transaction it commits first extends the lease *for its
/// epoch* (``extend(epoch:)``), which fails, rolling the whole transaction back, once another
/// coordinator has taken the lease with a higher epoch. A standby takes the lease
/// (``acquire``) only after it has expired by the database's clock (never a host's), and takes
/// it under the row's lock: a leader's transaction that extended the lease first commits
/// before the takeover, one that comes later fails. So a stale leader — frozen, cut off,
/// slow — commits nothing after the takeover, and nothing a leader sends (only ever after a
/// commit) is about a state the new leader does not know.
///
/// Advisory locks alone would not do: a dead host's session, and its locks, live on until
/// TCP keepalive notices. The lease row expires on its own.
public enum CoordinatorLease {
    /// The lease row and the functions that move it (a PostgreSQL migration).
    public static let schema = """
        CREATE TABLE coordinator_lease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            epoch BIGINT NOT NULL,
            holder TEXT NOT NULL,
            workers TEXT NOT NULL,
            clients TEXT NOT NULL,
            expires TIMESTAMPTZ NOT NULL);
        INSERT INTO coordinator_lease VALUES (1, 0, '', '', '', '-infinity');
        CREATE FUNCTION agentflow_extend_lease(mine BIGINT, seconds DOUBLE PRECISION) RETURNS VOID LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE coordinator_lease SET expires = now() + seconds * interval '1 second' WHERE id = 1 AND epoch = mine;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'lease lost: epoch % no longer leads (another coordinator took over)', mine USING ERRCODE = 'AFL01';
            END IF;
        END $$;
        """

    /// SQLSTATE of a transaction refused because its coordinator's epoch no longer leads.
    public static let lostState = "AFL01"

    /// The first statement of each of the leader's transactions: extends the lease by
    /// `seconds` from the transaction's start (the database's `now()`), or fails the
    /// transaction when `epoch` no longer leads.
    public static func extend(epoch: Int64, seconds: Double) -> PostgresConnection.Statement {
        .init("SELECT agentflow_extend_lease($1, $2)", [epoch, seconds])
    }

    /// Who leads, as the lease row says.
    public struct Holder: Sendable, Equatable {
        public var epoch: Int64
        /// Which coordinator (`host pid`), for messages.
        public var holder: String
        /// The endpoints workers and clients reach the leader at.
        public var workers: String
        public var clients: String
        /// Whether the lease is still running by the database's clock.
        public var live: Bool
        /// Seconds until it expires by the database's clock (negative: expired).
        public var remaining: Double
    }

    public static func read(_ c: PostgresConnection, timeout: Duration) throws(PostgresError) -> Holder {
        let rows = try c.query("""
            SELECT epoch, holder, workers, clients, expires > statement_timestamp(),
                   COALESCE(EXTRACT(EPOCH FROM expires - statement_timestamp())::float8, -1e9)
            FROM coordinator_lease WHERE id = 1
            """, timeout: timeout)
        guard let r = rows.first else { throw PostgresError(kind: .server, message: "the coordinator_lease row is missing") }
        return Holder(epoch: Int64(r.int(0)), holder: r.string(1), workers: r.string(2), clients: r.string(3), live: r.int(4) != 0,
                      remaining: r.double(5))
    }

    /// Takes the lease if it has expired (by the database's clock), or if `previous` — this
    /// coordinator's own last epoch — still holds it (a leader that lost its connection takes
    /// it back at once rather than waiting for its own lease to run out). Returns the new
    /// epoch, or nil when another coordinator leads. A lock held by a leader's transaction in
    /// flight makes this wait at most `timeout`.
    public static func acquire(_ c: PostgresConnection, holder: String, workers: String, clients: String, for length: Duration,
                               previous: Int64? = nil, timeout: Duration) throws(PostgresError) -> Int64? {
        let rows = try c.query("""
            UPDATE coordinator_lease SET epoch = epoch + 1, holder = $1::text, workers = $2::text, clients = $3::text,
                   expires = statement_timestamp() + $4::float8 * interval '1 second'
            WHERE id = 1 AND (expires < statement_timestamp() OR epoch = $5::bigint)
            RETURNING epoch
            """, holder, workers, clients, length.seconds, previous ?? -1, timeout: timeout)
        return rows.first.map { Int64($0.int(0)) }
    }

    /// Gives the lease up (a graceful stop): a standby takes over at its next look rather
    /// than when the lease would have run out. Does nothing if `epoch` no longer leads.
    public static func release(_ c: PostgresConnection, epoch: Int64, timeout: Duration) throws(PostgresError) {
        _ = try c.query("UPDATE coordinator_lease SET expires = '-infinity' WHERE id = 1 AND epoch = $1::bigint", epoch, timeout: timeout)
    }

    /// Whether `error` is the refusal of a transaction whose epoch no longer leads.
    public static func isLost(_ error: PostgresError) -> Bool { error.sqlState == lostState }
}

/// The leader's own view of its lease, by its monotonic clock: a transaction that extended
/// the lease was sent at `sent`, so the lease runs at least until `sent + length` in real
/// time (the database's `now()` for it is no earlier than the sending). Before sending
/// anything about a commit, the leader checks it still holds the lease by this reckoning; a
/// leader frozen between its commit and its sends (SIGSTOP) wakes up past it, sends nothing,
/// and steps down. `margin` allows for the clocks' rates to differ.
public struct LeaseClock: Sendable {
    /// How long the lease runs past each extension, and how much of it this host gives up
    /// for the clocks' disagreement (a fifth, 1 s at most, unless told).
    public let length: Duration
    public let margin: Duration
    /// Until when the lease holds by this host's reckoning; nil: it does not.
    public private(set) var validUntil: MonotonicInstant?

    public init(length: Duration, margin: Duration? = nil) {
        self.length = length
        self.margin = margin ?? min(.seconds(1), length / 5)
    }

    /// A transaction that extended the lease, sent at monotonic time `sent`, committed.
    public mutating func extended(sentAt sent: MonotonicInstant) {
        let until = sent + (length - margin)
        validUntil = max(validUntil ?? until, until)
    }

    public func holds(at now: MonotonicInstant) -> Bool { validUntil.map { now < $0 } ?? false }

    /// Forgets the lease (lost, or given up).
    public mutating func drop() { validUntil = nil }
}
