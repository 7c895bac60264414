-- PostgreSQL applies the grants too (issue 16; DESIGN, "Two walls"). The resolvers put the caller's
-- readable indicators and units inside every SQL statement; row-level security on the observation
-- tables applies them a second time, so a read that forgets its filter still returns only what the
-- caller may read, and nothing when the caller is unknown.
--
-- The grants reach PostgreSQL as session settings of the request connection, set by the request's
-- database handle (resolvers/granted.py) before any statement of that request runs on it:
--   hub.indicators  the readable indicator codes, as the keys of a JSON object: '{"UNEMP": true}'
--   hub.units       the readable unit ids, as sorted half-open ranges [from, to) laid end to end:
--                   ids 7, 8, 9 and 42 are '{7,10,42,43}'; every unit is '{-2147483648}'
--   hub.every_row   'on' only inside a reporting workflow transaction (resolvers/idempotency.py)
-- A setting that is absent or empty grants nothing (fail closed); a malformed one fails the statement.
-- They are not a secret: SQL run as nrhub_app can set them. They guard against a forgotten filter,
-- not against injected SQL.
--
-- Why these shapes: the check runs for every row a statement reads (19,000 for the benchmark's
-- series), and a list searched from its start cost about 1 us a row for 61 indicators, doubling
-- that query's server time. A JSON object's keys are searched by bisection, and width_bucket
-- bisects the ranges (an odd count of bounds at or below an id means the id is inside one), so
-- both stay cheap for every indicator and for a province's hundreds of units.
--
-- Policies name nrhub_app only. The owner owns these tables, so it bypasses them (no FORCE): the
-- SECURITY DEFINER trigger that keeps observation_current and observation_latest, migrations, the
-- demo loader and `nrhub audit verify` see every row, as before.

-- Each read once per statement: the policies call them inside scalar subqueries, which PostgreSQL
-- evaluates once as an InitPlan rather than once per row.
CREATE FUNCTION hub_readable_indicators() RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(nullif(current_setting('hub.indicators', true), ''), '{}')::jsonb;

CREATE FUNCTION hub_readable_units() RETURNS integer[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(nullif(current_setting('hub.units', true), ''), '{}')::integer[];

-- The reporting workflow's own transactions (accepting a report, correcting it) must see every
-- row: the revision a new one supersedes, the revisions an audit entry's digest covers. The
-- workflow confines those writes itself (resolvers/submissions.py) and returns no figure it read.
-- As the first branch of an OR it also keeps the planner's estimate of how many rows pass the
-- policy realistic: the check alone is estimated to pass almost none, and the series then ran as
-- a nested loop over 9,570 rows per unit (330 ms against 31).
CREATE FUNCTION hub_reads_every_row() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(current_setting('hub.every_row', true) = 'on', false);

DO $$
DECLARE
    served text;
BEGIN
    FOREACH served IN ARRAY ARRAY['observation_revision', 'observation_current', 'observation_latest'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', served);
        EXECUTE format($policy$
            CREATE POLICY readable ON %I FOR SELECT TO nrhub_app USING (
                (SELECT hub_reads_every_row())
                OR ((SELECT hub_readable_indicators()) ? indicator_code
                    AND width_bucket(unit_id, (SELECT hub_readable_units())) %% 2 = 1))
            $policy$, served);
    END LOOP;
END $$;

-- Accepting a report appends revisions. Which ones is the workflow's decision (its own agency's
-- reports, their form's cells and units, four eyes), not the reader's grants. No UPDATE or DELETE
-- policy: none is granted, and triggers refuse them anyway.
CREATE POLICY appended ON observation_revision FOR INSERT TO nrhub_app WITH CHECK (true);

-- Aggregates are computed from lower levels (0005, 0008). Under the reader's grants a caller
-- limited to one province would get a national sum of that province alone, silently wrong; so
-- they read their parts as the owner. The aggregate is what is authorized: every caller (the
-- aggregate, series and rate resolvers) checks that the caller may read the indicator and the unit
-- before asking, and only the combined value is returned.
ALTER FUNCTION aggregate_observation(text, integer, text, text, text[])
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION aggregate_additive(text, text, text, integer, text, text, text[])
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE ALL ON FUNCTION aggregate_observation(text, integer, text, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION aggregate_additive(text, text, text, integer, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aggregate_observation(text, integer, text, text, text[]) TO nrhub_app;
GRANT EXECUTE ON FUNCTION aggregate_additive(text, text, text, integer, text, text, text[]) TO nrhub_app;
