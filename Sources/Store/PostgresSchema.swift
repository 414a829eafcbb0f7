/// The store's schema in PostgreSQL: migration N here is SQLite's migration N
/// (``Store/migrations``) in PostgreSQL's types — INTEGER as BIGINT, REAL as DOUBLE PRECISION —
/// with the same tables, columns, keys and append-only ledger (enforced by triggers here too).
/// PostgreSQL-only: the coordinator lease (``CoordinatorLease``), and `subtasks.rowid`, which
/// keeps SQLite's insertion order for the store's `ORDER BY rowid`. `schema_migrations` records
/// each applied migration by number and name.
public enum PostgresSchema {
    public struct Migration: Sendable {
        public var name: String
        public var sql: String
    }

    public static let migrations: [Migration] = [
        Migration(name: "initial", sql: """
            CREATE TABLE jobs (
                id TEXT PRIMARY KEY, workflow TEXT NOT NULL, yaml TEXT NOT NULL, file TEXT NOT NULL,
                state TEXT NOT NULL, reason TEXT NOT NULL, planner TEXT NOT NULL, seed BIGINT NOT NULL,
                priority BIGINT NOT NULL, limit_tokens BIGINT, limit_usd_nano BIGINT,
                spent_tokens BIGINT NOT NULL, spent_usd_nano BIGINT NOT NULL,
                submitted_at DOUBLE PRECISION NOT NULL, deadline DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION,
                ended_at DOUBLE PRECISION, min_success DOUBLE PRECISION);
            CREATE INDEX jobs_state ON jobs(state);
            CREATE INDEX jobs_workflow ON jobs(workflow);
            CREATE TABLE subtasks (
                job TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, model TEXT, attempts BIGINT NOT NULL,
                tokens BIGINT NOT NULL, usd_nano BIGINT NOT NULL, output TEXT,
                rowid BIGINT GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (job, id));
            CREATE TABLE attempts (
                job TEXT NOT NULL, subtask TEXT NOT NULL, n BIGINT NOT NULL, model TEXT NOT NULL, worker TEXT,
                state TEXT NOT NULL, token_cap BIGINT NOT NULL, reserved_tokens BIGINT NOT NULL,
                reserved_usd_nano BIGINT NOT NULL, tokens_in BIGINT NOT NULL, tokens_out BIGINT NOT NULL,
                usd_nano BIGINT NOT NULL, deadline DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                dispatched_at DOUBLE PRECISION, ended_at DOUBLE PRECISION, detail TEXT NOT NULL, PRIMARY KEY (job, subtask, n));
            CREATE TABLE ledger (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job TEXT NOT NULL, subtask TEXT NOT NULL, n BIGINT NOT NULL,
                role TEXT NOT NULL, model TEXT NOT NULL, tokens_in BIGINT NOT NULL, tokens_out BIGINT NOT NULL,
                usd_nano BIGINT NOT NULL, kind TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
            CREATE INDEX ledger_job ON ledger(job);
            CREATE FUNCTION agentflow_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the ledger is append-only';
            END $$;
            CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION agentflow_ledger_append_only();
            CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger FOR EACH STATEMENT EXECUTE FUNCTION agentflow_ledger_append_only();
            CREATE TABLE workers (
                name TEXT PRIMARY KEY, host TEXT NOT NULL, gpus TEXT NOT NULL, model TEXT NOT NULL, slots BIGINT NOT NULL,
                free_memory BIGINT NOT NULL, state TEXT NOT NULL, last_seen DOUBLE PRECISION NOT NULL);
            \(CoordinatorLease.schema)
            """),
        Migration(name: "job_yaml", sql: """
            CREATE TABLE job_yaml (job TEXT PRIMARY KEY, yaml TEXT NOT NULL);
            INSERT INTO job_yaml (job, yaml) SELECT id, yaml FROM jobs;
            UPDATE jobs SET yaml = '';
            """),
        Migration(name: "jobs_tenant", sql: "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"),
        Migration(name: "outputs", sql: """
            CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, base64 TEXT NOT NULL);
            CREATE TABLE output_bundles (job TEXT NOT NULL, subtask TEXT NOT NULL, n BIGINT NOT NULL, bundle TEXT NOT NULL,
                                         PRIMARY KEY (job, subtask));
            CREATE TABLE output_files (job TEXT NOT NULL, subtask TEXT NOT NULL, path TEXT NOT NULL, size BIGINT NOT NULL,
                                       sha256 TEXT NOT NULL, PRIMARY KEY (job, subtask, path));
            """),
        Migration(name: "transcripts", sql: """
            CREATE TABLE transcript_entries (
                job TEXT NOT NULL, subtask TEXT NOT NULL, n BIGINT NOT NULL, seq BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,
                bytes BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job, subtask, n, seq));
            CREATE TABLE transcripts (
                job TEXT NOT NULL, subtask TEXT NOT NULL, n BIGINT NOT NULL, entries BIGINT NOT NULL, bytes BIGINT NOT NULL,
                refused BIGINT NOT NULL, PRIMARY KEY (job, subtask, n));
            CREATE TABLE transcripts_pruned (
                job TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, entries BIGINT NOT NULL, bytes BIGINT NOT NULL, reason TEXT NOT NULL);
            CREATE TABLE transcripts_total (id INTEGER PRIMARY KEY CHECK (id = 0), bytes BIGINT NOT NULL);
            INSERT INTO transcripts_total (id, bytes) VALUES (0, 0);
            """),
        Migration(name: "tenants", sql: """
            CREATE TABLE tenant_usage (tenant TEXT PRIMARY KEY, usage DOUBLE PRECISION NOT NULL, at DOUBLE PRECISION NOT NULL);
            CREATE TABLE tenant_spend (
                tenant TEXT NOT NULL, period_start DOUBLE PRECISION NOT NULL, tokens BIGINT NOT NULL, usd_nano BIGINT NOT NULL,
                PRIMARY KEY (tenant, period_start));
            """),
        // Each transaction of a leader carries its epoch (set by the lease extension, for the
        // transaction only); ledger rows take it by default, attempts by a trigger on every write.
        Migration(name: "epochs", sql: """
            CREATE OR REPLACE FUNCTION agentflow_extend_lease(mine BIGINT, seconds DOUBLE PRECISION) RETURNS VOID LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE coordinator_lease SET expires = now() + seconds * interval '1 second' WHERE id = 1 AND epoch = mine;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'lease lost: epoch % no longer leads (another coordinator took over)', mine USING ERRCODE = 'AFL01';
                END IF;
                PERFORM set_config('agentflow.epoch', mine::text, true);
            END $$;
            CREATE FUNCTION agentflow_epoch() RETURNS BIGINT LANGUAGE sql STABLE AS $$
                SELECT NULLIF(current_setting('agentflow.epoch', true), '')::bigint
            $$;
            ALTER TABLE ledger ADD COLUMN epoch BIGINT;
            ALTER TABLE ledger ALTER COLUMN epoch SET DEFAULT agentflow_epoch();
            ALTER TABLE attempts ADD COLUMN epoch BIGINT;
            CREATE FUNCTION agentflow_stamp_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.epoch := agentflow_epoch();
                RETURN NEW;
            END $$;
            CREATE TRIGGER attempts_epoch BEFORE INSERT OR UPDATE ON attempts FOR EACH ROW EXECUTE FUNCTION agentflow_stamp_epoch();
            """),
    ]
}
