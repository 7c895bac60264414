-- Aggregation can be asked to ignore values stored at some levels (p_skip), e.g. to compute a
-- province's figure from its communes and check it against the figure the province reported.
-- Same rules as 0005 otherwise; the four-argument calls keep working through the default.

DROP FUNCTION aggregate_observation(text, integer, text, text);
DROP FUNCTION aggregate_additive(text, text, text, integer, text, text);

-- SUM, AVERAGE, LAST and NONE indicators (RATIO components are SUM indicators).
CREATE FUNCTION aggregate_additive(p_indicator text, p_rule text, p_freq text, p_unit integer,
                                   p_period text, p_dims text, p_skip text[] DEFAULT '{}')
    RETURNS aggregated
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    result aggregated;
    parts integer[];
    found_count bigint;
    min_rank int;
BEGIN
    IF period_frequency(p_period) <> p_freq THEN
        IF p_rule = 'NONE' OR subperiods(p_period, p_freq) IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT CASE WHEN count(a.value) < count(*) THEN NULL
                    WHEN p_rule = 'SUM' THEN sum(a.value)
                    WHEN p_rule = 'AVERAGE' THEN avg(a.value)
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
    SELECT count(*), CASE WHEN p_rule = 'AVERAGE' THEN avg(c.value) ELSE sum(c.value) END,
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
                WHEN p_rule = 'AVERAGE' THEN avg(a.value) ELSE sum(a.value) END,
           status_of_rank(min(status_rank(a.status))), sum(a.stored_parts)
      INTO result
      FROM unnest(parts) AS part(id),
           LATERAL aggregate_additive(p_indicator, p_rule, p_freq, part.id, p_period, p_dims, p_skip) AS a;
    RETURN CASE WHEN result.value IS NULL THEN NULL ELSE result END;
END $$;

-- Any indicator, RATIO included.
CREATE FUNCTION aggregate_observation(p_indicator text, p_unit integer, p_period text, p_dims text,
                                      p_skip text[] DEFAULT '{}')
    RETURNS aggregated
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
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
