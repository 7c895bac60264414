-- Aggregation by each indicator's rule: the current definition of every function of it, in one place.
--
-- Numbered migrations are history: 0005 created these functions, 0008 re-created two of them with
-- p_skip, 0013 made the two aggregates SECURITY DEFINER with grants to nrhub_app. Those files stay
-- as they were applied (hub/migrate.py refuses an edited one), so a change to the rule is made
-- HERE: the runner applies this file after the numbered migrations whenever its text changed (or a
-- numbered migration was applied), on a new database and an existing one alike. Everything is
-- CREATE OR REPLACE, which keeps each function's owner and grants; SECURITY DEFINER and the pinned
-- search_path are properties of the definition, so they are written out below, not inherited.
-- The rule names (SUM, AVERAGE, LAST, NONE, RATIO) are resolvers/aggregate_rule.py's Aggregation,
-- and resolvers/sources/aggregate.py follows the same rule over a source's values (the differential
-- tests in tests/federation/test_aggregates.py pin the two together).
--
-- A value for (indicator, unit, period, disaggregation) is the stored current value when there is
-- one; otherwise it is combined from its parts: from finer periods when the period is coarser than
-- the indicator's periodicity; from the units it was formed from when the period ended before the
-- unit existed (the 2025 reform); else from the units below it in force at the period's end.
-- A rate is sum(numerator) / sum(denominator) x factor, never a mean of rates. An incomplete set
-- of parts gives no value rather than a wrong one. A mean (AVERAGE) and a rate are rounded to the
-- indicator's decimals where they are computed, by PostgreSQL's round (half away from zero); a
-- stored value keeps its digits. A mean of means uses the rounded means, the figures a reader sees.

-- A week (2026-W05, migration 0018) ends on its Sunday.
CREATE OR REPLACE FUNCTION period_end(p text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN period_frequency(p) = 'W' THEN period_start(p) + 6
        ELSE (period_start(p) + make_interval(months => CASE period_frequency(p)
            WHEN 'A' THEN 12 WHEN 'S' THEN 6 WHEN 'Q' THEN 3 ELSE 1 END))::date - 1 END;

-- The periods of frequency f that make up p (NULL when f is coarser than p). Weeks and the other
-- frequencies never combine (a week may cross a month's end): NULL between them, p for a week in weeks.
CREATE OR REPLACE FUNCTION subperiods(p text, f text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN 'W' IN (f, period_frequency(p)) THEN
        CASE WHEN f = period_frequency(p) THEN ARRAY[p] END
    ELSE (
        WITH steps(freq, months) AS (VALUES ('A', 12), ('S', 6), ('Q', 3), ('M', 1)),
        sizes AS (SELECT (SELECT months FROM steps WHERE freq = period_frequency(p)) AS outer_m,
                         (SELECT months FROM steps WHERE freq = f) AS inner_m)
        SELECT CASE WHEN inner_m > outer_m THEN NULL ELSE ARRAY(
            SELECT to_char(d, 'YYYY') || CASE f
                WHEN 'A' THEN ''
                WHEN 'S' THEN '-S' || ((extract(month FROM d)::int - 1) / 6 + 1)
                WHEN 'Q' THEN '-Q' || ((extract(month FROM d)::int - 1) / 3 + 1)
                ELSE '-M' || to_char(d, 'MM') END
            FROM generate_series(period_start(p), period_end(p), make_interval(months => inner_m)) AS d
            ORDER BY d) END
        FROM sizes) END;

CREATE OR REPLACE FUNCTION status_rank(s text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE s WHEN 'ESTIMATE' THEN 0 WHEN 'PRELIMINARY' THEN 1 WHEN 'OFFICIAL' THEN 2 END;

CREATE OR REPLACE FUNCTION status_of_rank(r int) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (ARRAY['ESTIMATE', 'PRELIMINARY', 'OFFICIAL'])[r + 1];

-- The units a unit's value for a period is made of (see the header).
CREATE OR REPLACE FUNCTION part_units(p_unit integer, p_period text) RETURNS integer[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (
        SELECT CASE WHEN period_end(p_period) < u.valid_from
            THEN ARRAY(SELECT l.old_unit_id FROM unit_lineage l WHERE l.new_unit_id = u.id ORDER BY 1)
            ELSE ARRAY(SELECT c.id FROM admin_unit c
                       WHERE c.parent_id = u.id AND c.valid_from <= period_end(p_period)
                         AND (c.valid_to IS NULL OR c.valid_to >= period_end(p_period)) ORDER BY 1)
            END
        FROM admin_unit u WHERE u.id = p_unit);

-- SUM, AVERAGE, LAST and NONE indicators (RATIO components are SUM indicators). Values stored at
-- the levels in p_skip are ignored, e.g. to recompute a province from its communes (fromLevel).
CREATE OR REPLACE FUNCTION aggregate_additive(p_indicator text, p_rule text, p_freq text, p_unit integer,
                                              p_period text, p_dims text, p_skip text[] DEFAULT '{}')
    RETURNS aggregated
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    result aggregated;
    parts integer[];
    found_count bigint;
    min_rank int;
    places int;  -- the indicator's decimals, to which a mean is rounded
BEGIN
    IF p_rule = 'AVERAGE' THEN
        SELECT i.decimals INTO places FROM indicator i WHERE i.code = p_indicator;
    END IF;
    IF period_frequency(p_period) <> p_freq THEN
        IF p_rule = 'NONE' OR subperiods(p_period, p_freq) IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT CASE WHEN count(a.value) < count(*) THEN NULL
                    WHEN p_rule = 'SUM' THEN sum(a.value)
                    WHEN p_rule = 'AVERAGE' THEN round(avg(a.value), places)
                    ELSE (array_agg(a.value ORDER BY s.ord DESC))[1] END,
               status_of_rank(min(status_rank(a.status))), sum(a.stored_parts)
          INTO result
          FROM unnest(subperiods(p_period, p_freq)) WITH ORDINALITY AS s(period, ord),
               LATERAL aggregate_additive(p_indicator, p_rule, p_freq, p_unit, s.period, p_dims, p_skip) AS a;
        RETURN CASE WHEN result.value IS NULL THEN NULL ELSE result END;
    END IF;

    SELECT c.value, c.status, 1 INTO result FROM observation_current c
     WHERE c.indicator_code = p_indicator AND c.unit_id = p_unit AND c.period = p_period
       AND c.dims = p_dims
       AND (cardinality(p_skip) = 0
            OR NOT (SELECT u.level = ANY(p_skip) FROM admin_unit u WHERE u.id = p_unit));
    IF FOUND OR p_rule = 'NONE' THEN
        RETURN CASE WHEN FOUND THEN result ELSE NULL END;
    END IF;

    parts := part_units(p_unit, p_period);
    IF coalesce(cardinality(parts), 0) = 0 THEN
        RETURN NULL;
    END IF;
    -- Usually every part is stored: one statement. Otherwise each part is derived in turn.
    SELECT count(*), CASE WHEN p_rule = 'AVERAGE' THEN round(avg(c.value), places) ELSE sum(c.value) END,
           min(status_rank(c.status))
      INTO found_count, result.value, min_rank
      FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id
     WHERE c.indicator_code = p_indicator AND c.unit_id = ANY(parts) AND c.period = p_period
       AND c.dims = p_dims AND NOT (u.level = ANY(p_skip));
    IF found_count = cardinality(parts) THEN
        result.status := status_of_rank(min_rank);
        result.stored_parts := found_count;
        RETURN result;
    END IF;
    SELECT CASE WHEN count(a.value) < count(*) THEN NULL
                WHEN p_rule = 'AVERAGE' THEN round(avg(a.value), places) ELSE sum(a.value) END,
           status_of_rank(min(status_rank(a.status))), sum(a.stored_parts)
      INTO result
      FROM unnest(parts) AS part(id),
           LATERAL aggregate_additive(p_indicator, p_rule, p_freq, part.id, p_period, p_dims, p_skip) AS a;
    RETURN CASE WHEN result.value IS NULL THEN NULL ELSE result END;
END $$;

-- Any indicator, RATIO included.
CREATE OR REPLACE FUNCTION aggregate_observation(p_indicator text, p_unit integer, p_period text, p_dims text,
                                                 p_skip text[] DEFAULT '{}')
    RETURNS aggregated
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ind indicator;
    num aggregated;
    den aggregated;
BEGIN
    SELECT * INTO ind FROM indicator WHERE code = p_indicator;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF ind.aggregation <> 'RATIO' THEN
        RETURN aggregate_additive(ind.code, ind.aggregation, ind.periodicity, p_unit, p_period, p_dims, p_skip);
    END IF;
    num := aggregate_additive(ind.numerator_code, 'SUM', ind.periodicity, p_unit, p_period, p_dims, p_skip);
    den := aggregate_additive(ind.denominator_code, 'SUM', ind.periodicity, p_unit, p_period, p_dims, p_skip);
    IF num.value IS NULL OR den.value IS NULL OR den.value = 0 THEN
        RETURN NULL;
    END IF;
    RETURN ROW(round(num.value * ind.ratio_factor / den.value, ind.decimals),
               status_of_rank(least(status_rank(num.status), status_rank(den.status))),
               num.stored_parts + den.stored_parts)::aggregated;
END $$;

-- The aggregates read their parts as the owner, past row-level security (migration 0013 says why);
-- so only the request role may call them, never PUBLIC.
REVOKE ALL ON FUNCTION aggregate_observation(text, integer, text, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION aggregate_additive(text, text, text, integer, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aggregate_observation(text, integer, text, text, text[]) TO nrhub_app;
GRANT EXECUTE ON FUNCTION aggregate_additive(text, text, text, integer, text, text, text[]) TO nrhub_app;

-- The rates a dashboard's "latest" table computes (resolvers/tables.py): for each rate and unit, the
-- latest period its two components both reach (their latest total cells stored at the unit itself;
-- of the two periods, the one that ends first), where both are later than the rate's own latest
-- stored period, or the rate has none. One call for a whole table; usually it returns nothing, and
-- the denominator is looked up only where the numerator is ahead. Each scalar subquery is one
-- primary-key lookup (a join was planned as a scan of every unit's rows); OFFSET 0 keeps each
-- level's lookups from being repeated in the conditions above it. Read as the owner, like the
-- aggregates: the caller's right to the computed rate is decided before it is asked
-- (resolvers/aggregates.py, rate_withheld), and only the period reaches the caller, with the rate.
CREATE OR REPLACE FUNCTION latest_rates_to_compute(p_indicators text[], p_units integer[])
    RETURNS TABLE (indicator_code text, unit_id integer, period text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT code, unit_id,
           CASE WHEN period_end(numerator) <= period_end(denominator) THEN numerator ELSE denominator END
    FROM (
        SELECT code, unit_id, numerator, stored,
               (SELECT d.period FROM observation_latest d
                 WHERE d.indicator_code = x.denominator_code AND d.unit_id = x.unit_id AND d.dims = '') AS denominator
        FROM (
            SELECT i.code, i.denominator_code, u.id AS unit_id,
                   (SELECT n.period FROM observation_latest n
                     WHERE n.indicator_code = i.numerator_code AND n.unit_id = u.id AND n.dims = '') AS numerator,
                   (SELECT r.period FROM observation_latest r
                     WHERE r.indicator_code = i.code AND r.unit_id = u.id AND r.dims = '') AS stored
            FROM indicator i CROSS JOIN unnest(p_units) AS u(id)
            WHERE i.code = ANY(p_indicators) AND i.aggregation = 'RATIO'
            OFFSET 0
        ) AS x
        WHERE numerator IS NOT NULL AND (stored IS NULL OR period_end(numerator) > period_end(stored))
        OFFSET 0
    ) AS y
    WHERE denominator IS NOT NULL AND (stored IS NULL OR period_end(denominator) > period_end(stored))
$$;
REVOKE ALL ON FUNCTION latest_rates_to_compute(text[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION latest_rates_to_compute(text[], integer[]) TO nrhub_app;
