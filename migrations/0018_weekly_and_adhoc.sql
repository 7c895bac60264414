-- Weekly periods and ad-hoc (đột xuất) regimes (issue 19).
--
-- A week is an ISO 8601 week, written 2026-W05: Monday to Sunday, numbered in its ISO year, so
-- 2026-W01 starts on 29 December 2025 and only a year whose 28 December lies in week 53 has one
-- (2020-W53 and 2026-W53 are weeks, 2025-W53 is not). Weeks are periods of their own: a week may
-- cross a month's end, so they never add up to months, quarters or years (subperiods in
-- migrations/functions/aggregation.sql gives NULL between the two, which is "no value").
--
-- An ad-hoc regime is a one-off request: "report storm damage for 2026-M10 by 2026-11-05 17:00".
-- It asks for one period (adhoc_period) by one instant (adhoc_deadline), chosen by whoever issues
-- it, with no cut-off arithmetic and no holiday moving it. Its frequency stays the frequency of that
-- period, so every rule keyed on a regime's frequency (a report's period, a form's indicators, a lock
-- exception's period) holds for it unchanged; its deadline rule is ONE_OFF, which says the deadline
-- is adhoc_deadline.

-- Periods: the grammar gains Www, valid only where the ISO year has that week (28 December always
-- lies in a year's last ISO week). CASE, not AND, so nothing is cast before the pattern matched.
CREATE OR REPLACE FUNCTION is_period(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN p !~ '^[0-9]{4}(-(S[12]|Q[1-4]|M(0[1-9]|1[0-2])|W(0[1-9]|[1-4][0-9]|5[0-3])))?$' THEN false
        WHEN substr(p, 6, 1) <> 'W' THEN true
        WHEN substr(p, 1, 4)::int < 1 THEN false
        ELSE substr(p, 7, 2)::int <= extract(week FROM make_date(substr(p, 1, 4)::int, 12, 28))::int
    END;

-- A week starts on its Monday: week 1 is the week holding 4 January.
CREATE OR REPLACE FUNCTION period_start(p text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN substr(p, 6, 1) = 'W'
        THEN make_date(substr(p, 1, 4)::int, 1, 4)
             - (extract(isodow FROM make_date(substr(p, 1, 4)::int, 1, 4))::int - 1)
             + (substr(p, 7, 2)::int - 1) * 7
        ELSE make_date(substr(p, 1, 4)::int, CASE
            WHEN length(p) = 4 THEN 1
            WHEN substr(p, 6, 1) = 'S' THEN (substr(p, 7, 1)::int - 1) * 6 + 1
            WHEN substr(p, 6, 1) = 'Q' THEN (substr(p, 7, 1)::int - 1) * 3 + 1
            ELSE substr(p, 7, 2)::int END, 1)
    END;
-- period_frequency (migration 0001) already reads the letter: 'W'. period_end is in
-- migrations/functions/aggregation.sql (a week ends on its Sunday).

ALTER TABLE indicator DROP CONSTRAINT indicator_periodicity_check,
    ADD CONSTRAINT indicator_periodicity_check CHECK (periodicity IN ('M', 'Q', 'S', 'A', 'W'));

ALTER TABLE regime DROP CONSTRAINT regime_frequency_check,
    ADD CONSTRAINT regime_frequency_check CHECK (frequency IN ('M', 'Q', 'S', 'A', 'W')),
    DROP CONSTRAINT regime_deadline_rule_check,
    ADD CONSTRAINT regime_deadline_rule_check CHECK (deadline_rule IN ('DAYS_AFTER_CUTOFF',
                                                                       'WORKING_DAYS_AFTER_CUTOFF',
                                                                       'DAY_OF_NEXT_MONTH', 'ONE_OFF')),
    ADD COLUMN adhoc_period text CHECK (is_period(adhoc_period)),
    ADD COLUMN adhoc_deadline timestamptz,
    -- An ad-hoc regime names both, and its deadline rule says so; a recurring one neither.
    ADD CONSTRAINT regime_adhoc_whole CHECK (
        (adhoc_period IS NOT NULL) = (adhoc_deadline IS NOT NULL)
        AND (adhoc_period IS NOT NULL) = (deadline_rule = 'ONE_OFF')),
    ADD CONSTRAINT regime_adhoc_frequency CHECK (adhoc_period IS NULL OR period_frequency(adhoc_period) = frequency),
    -- A week has no "next month": its deadline counts days or working days from its Sunday.
    ADD CONSTRAINT regime_weekly_deadline CHECK (frequency <> 'W' OR deadline_rule <> 'DAY_OF_NEXT_MONTH');
