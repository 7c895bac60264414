-- The request role as a real boundary (README: Security, "Database roles").
--
-- Until now the hub logged in as the owner (often a superuser) and only SET ROLE nrhub_app, which
-- RESET ROLE undoes; and nrhub_app could write the tables the API serves and read the private
-- signing keys. From here on request connections log in as nrhub_app itself: a LOGIN role that is
-- nothing else (not a superuser, no memberships, so no role to SET ROLE to), granted exactly what
-- request code does, table by table. Migrations and operator commands keep the owner, the
-- configured URL's user, who owns every table.

-- Roles are cluster-wide: other databases on the server may have created it already (0009 made it
-- NOLOGIN). No password: the embedded server trusts its private socket; on another server the
-- operator gives it one, or a certificate, and names it in HUB_REQUEST_DATABASE_URL.
DO $$
DECLARE
    membership record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nrhub_app') THEN
        BEGIN
            CREATE ROLE nrhub_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it at the same moment
        END;
    END IF;
    -- Only when needed: a role a DBA prepared exactly so needs no CREATEROLE of the owner.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nrhub_app'
               AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolinherit OR rolreplication OR rolbypassrls
                    OR NOT rolcanlogin)) THEN
        ALTER ROLE nrhub_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
    END IF;
    -- A member of no role, so there is nothing to SET ROLE to and nothing to inherit.
    FOR membership IN SELECT roleid::regrole AS granted FROM pg_auth_members WHERE member = 'nrhub_app'::regrole LOOP
        EXECUTE format('REVOKE %s FROM nrhub_app', membership.granted);
    END LOOP;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO nrhub_app', current_database());
END $$;

-- Everything 0009 granted, and its defaults for tables created later, go; then each table gets what
-- request code does to it (tests/trust/test_roles.py pins this matrix). A new table grants nothing
-- until its migration decides.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM nrhub_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM nrhub_app;  -- identity columns need no grant
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM nrhub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM nrhub_app;
REVOKE CREATE ON SCHEMA public FROM nrhub_app;
GRANT USAGE ON SCHEMA public TO nrhub_app;

-- Read only: the catalogue (loaded by the demo loader and migrations), the served tables (written
-- by the trigger below), holidays (`nrhub regimes import`), clients and people (`nrhub clients`,
-- `nrhub users`; the GraphiQL client is registered by the owner connection at start), the ledger.
GRANT SELECT ON admin_unit, unit_lineage, agency, agency_lineage, indicator_field, dimension, dimension_value,
    indicator, indicator_dimension, observation_current, observation_latest, holiday, oauth_client, hub_user,
    schema_migration TO nrhub_app;
-- Appended, never changed: history, audited by the entries that cover it.
GRANT SELECT, INSERT ON observation_revision, audit_entry, idempotency_key, revoked_token TO nrhub_app;
-- The workflow: a report's status moves on, draft values are upserted, regimes are upserted
-- (upsertRegime replaces a regime's reporters and form). Every change appends an audit entry.
GRANT SELECT, INSERT, UPDATE ON submission, submission_value, regime TO nrhub_app;
GRANT SELECT, INSERT, DELETE ON regime_reporter, regime_item TO nrhub_app;
-- The token endpoints' own state: codes and refresh tokens are marked used or revoked; counters.
GRANT SELECT, INSERT, UPDATE ON authorization_code, refresh_token TO nrhub_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit TO nrhub_app;
-- signing_key: nothing. The hub loads and makes keys through its owner connection (hub/app.py), so
-- SQL run by a request cannot read a private key, mint a token or sign a checkpoint.

-- The served tables are written only here, as their owner: request code may insert a revision but
-- not touch observation_current or observation_latest. The search path is pinned, pg_temp last, so
-- a caller's temporary table cannot stand in for a served one.
ALTER FUNCTION observation_revision_apply() SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE ALL ON FUNCTION observation_revision_apply() FROM PUBLIC;

-- Submitted values are history too: once a version leaves DRAFT its cells never change, for anyone
-- (a correction is a new version). Statement-level, so a 20,000-cell upload checks once.
CREATE FUNCTION submission_value_frozen() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    frozen boolean := false;
BEGIN
    -- Two statements: each names only the transition table this event has.
    IF TG_OP <> 'DELETE' THEN
        frozen := EXISTS (SELECT 1 FROM new_rows v JOIN submission s ON s.id = v.submission_id
                          WHERE s.status <> 'DRAFT');
    END IF;
    IF TG_OP <> 'INSERT' AND NOT frozen THEN
        frozen := EXISTS (SELECT 1 FROM old_rows v JOIN submission s ON s.id = v.submission_id
                          WHERE s.status <> 'DRAFT');
    END IF;
    IF frozen THEN
        RAISE EXCEPTION 'submission_value: % refused, the report is not a draft', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER submission_value_frozen_insert AFTER INSERT ON submission_value
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION submission_value_frozen();
CREATE TRIGGER submission_value_frozen_update AFTER UPDATE ON submission_value
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION submission_value_frozen();
CREATE TRIGGER submission_value_frozen_delete AFTER DELETE ON submission_value
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION submission_value_frozen();
CREATE TRIGGER submission_value_no_truncate BEFORE TRUNCATE ON submission_value
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
