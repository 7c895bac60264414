-- Periods open and close (issue 19, DHIS2's "open future periods", expiry days and lock exceptions).
--
-- A draft opens when the period's data cut-off window starts, or earlier where the regime allows
-- early reports. A regime with expiry days locks each report that many days after its deadline:
-- from then on nothing of it is saved, submitted or corrected, unless the receiving agency has opened
-- a lock exception for that reporter and period, with a reason and an expiry. A lock never rewrites
-- timeliness: a report submitted under an exception is late, and shows the exception it came under.

ALTER TABLE regime
    ADD COLUMN allow_early boolean NOT NULL DEFAULT false,
    -- NULL: the regime's reports never lock.
    ADD COLUMN expiry_days smallint CHECK (expiry_days BETWEEN 0 AND 366);

CREATE TABLE lock_exception (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    regime_code text NOT NULL REFERENCES regime (code),
    agency_code text NOT NULL REFERENCES agency (code),
    period      text NOT NULL CHECK (is_period(period)),
    reason      text NOT NULL CHECK (btrim(reason) <> ''),
    opened_by   text NOT NULL,
    opened_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CHECK (expires_at > opened_at)
);
CREATE INDEX lock_exception_report ON lock_exception (regime_code, agency_code, period, expires_at);

-- Opened by the receiving agency through a request, audited; never changed afterwards (an exception
-- ends by expiring).
GRANT SELECT, INSERT ON lock_exception TO nrhub_app;
CREATE TRIGGER lock_exception_append_only BEFORE UPDATE OR DELETE ON lock_exception
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The lock rule, in one place: the workflow (resolvers/period_locks.py) and the reads that filter
-- by it (a LOCKED status in `submissions`) both ask these.
CREATE FUNCTION report_locks_at(p_regime text, p_deadline timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE
    RETURN (SELECT p_deadline + make_interval(days => expiry_days) FROM regime WHERE code = p_regime);

CREATE FUNCTION report_lock_exception(p_regime text, p_agency text, p_period text, p_at timestamptz) RETURNS bigint
    LANGUAGE sql STABLE
    RETURN (SELECT id FROM lock_exception
            WHERE regime_code = p_regime AND agency_code = p_agency AND period = p_period
              AND opened_at <= p_at AND expires_at > p_at
            ORDER BY expires_at DESC LIMIT 1);

-- Locked: past the lock instant (inclusive of it: a report may change at that instant) with no exception in force.
CREATE FUNCTION report_locked(p_regime text, p_agency text, p_period text, p_deadline timestamptz, p_at timestamptz)
    RETURNS boolean
    LANGUAGE sql STABLE
    RETURN coalesce(p_at > report_locks_at(p_regime, p_deadline), false)
           AND report_lock_exception(p_regime, p_agency, p_period, p_at) IS NULL;
