-- The audit log: append-only, each entry's hash covering the previous entry's hash (a hash chain).

CREATE TABLE audit_entry (
    seq          bigint PRIMARY KEY CHECK (seq >= 1),
    occurred_at  timestamptz NOT NULL,
    actor_agency text,
    actor_client text,
    actor_user   text,
    action       text NOT NULL,
    subject      text NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text,
    -- SHA-256 of the previous entry (32 zero bytes for the first) and of this entry's canonical form.
    prev_hash    bytea NOT NULL UNIQUE CHECK (length(prev_hash) = 32),
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32)
);

CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
