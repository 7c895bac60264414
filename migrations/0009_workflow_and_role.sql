-- The reporting workflow's remaining tables, and the restricted role request connections run as.

-- Public holidays, for deadlines counted in working days (configurable: nrhub regimes import).
CREATE TABLE holiday (
    day  date PRIMARY KEY,
    name text NOT NULL
);

-- Every creating or changing mutation carries an idempotency key, scoped per client: a retry with
-- the same key and input gets the first result; the same key with other input is a conflict.
CREATE TABLE idempotency_key (
    client_id    text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 8 AND 128),
    operation    text NOT NULL,
    request_hash text NOT NULL,
    result       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, key)
);

CREATE INDEX submission_agency_period ON submission (agency_code, period);
CREATE INDEX observation_revision_submission_idx ON observation_revision (submission_id)
    WHERE submission_id IS NOT NULL;

-- Request connections switch to this role on connect (even when the configured URL is an
-- administrator's), so they cannot rewrite history: no UPDATE, DELETE or TRUNCATE on audit
-- entries and observation revisions. The append-only triggers are the second layer.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nrhub_app') THEN
        CREATE ROLE nrhub_app NOLOGIN;
    END IF;
    BEGIN
        EXECUTE format('GRANT nrhub_app TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
        NULL;  -- a superuser needs no membership to SET ROLE
    END;
END $$;

GRANT USAGE ON SCHEMA public TO nrhub_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO nrhub_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO nrhub_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entry, observation_revision FROM nrhub_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migration FROM nrhub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nrhub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO nrhub_app;
