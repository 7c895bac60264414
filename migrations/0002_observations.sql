-- Observations: an append-only history of revisions, plus two tables the writes keep current so
-- reads never search history: the current value of every key, and the latest period of every series.

-- A disaggregation key: the non-total cells, sorted by dimension, e.g. 'SEX=F|URBANISATION=U';
-- '' is the total of every dimension.
CREATE FUNCTION is_dims_key(k text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN k ~ '^([A-Z][A-Z_]*=[A-Z0-9]+(\|[A-Z][A-Z_]*=[A-Z0-9]+)*)?$';

CREATE TABLE observation_revision (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    indicator_code text NOT NULL REFERENCES indicator (code),
    unit_id        integer NOT NULL REFERENCES admin_unit (id),
    period         text NOT NULL CHECK (is_period(period)),
    dims           text NOT NULL DEFAULT '' CHECK (is_dims_key(dims)),
    value          numeric NOT NULL CHECK (value = value),   -- rejects NaN
    status         text NOT NULL CHECK (status IN ('ESTIMATE', 'PRELIMINARY', 'OFFICIAL')),
    -- Provenance: the submission it was accepted from, or the source it was loaded from.
    submission_id  bigint,
    source         text,
    previous_id    bigint REFERENCES observation_revision (id),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text NOT NULL,
    reason         text,
    CHECK ((submission_id IS NULL) <> (source IS NULL)),
    -- A correction must say why (DESIGN: who, when and why).
    CHECK (previous_id IS NULL OR (reason IS NOT NULL AND reason <> ''))
);
-- History is linear: one first revision per key, and each revision is superseded at most once.
CREATE UNIQUE INDEX observation_revision_first ON observation_revision (indicator_code, unit_id, period, dims)
    WHERE previous_id IS NULL;
CREATE UNIQUE INDEX observation_revision_previous ON observation_revision (previous_id);

CREATE TABLE observation_current (
    indicator_code text NOT NULL REFERENCES indicator (code),
    unit_id        integer NOT NULL REFERENCES admin_unit (id),
    period         text NOT NULL CHECK (is_period(period)),
    dims           text NOT NULL CHECK (is_dims_key(dims)),
    value          numeric NOT NULL,
    status         text NOT NULL,
    revision_id    bigint NOT NULL UNIQUE REFERENCES observation_revision (id),
    submission_id  bigint,
    source         text,
    PRIMARY KEY (indicator_code, unit_id, period, dims)
);

CREATE TABLE observation_latest (
    indicator_code text NOT NULL,
    unit_id        integer NOT NULL,
    dims           text NOT NULL,
    period         text NOT NULL,
    value          numeric NOT NULL,
    status         text NOT NULL,
    revision_id    bigint NOT NULL REFERENCES observation_revision (id),
    submission_id  bigint,
    source         text,
    PRIMARY KEY (indicator_code, unit_id, dims)
);

-- Set-based maintenance of the two derived tables, once per statement (COPY included).
CREATE FUNCTION observation_revision_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_rows n JOIN indicator i ON i.code = n.indicator_code
        WHERE period_frequency(n.period) <> i.periodicity
    ) THEN
        RAISE EXCEPTION 'observation period does not match the indicator''s periodicity'
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (
        SELECT 1 FROM new_rows n JOIN observation_revision p ON p.id = n.previous_id
        WHERE (p.indicator_code, p.unit_id, p.period, p.dims)
              IS DISTINCT FROM (n.indicator_code, n.unit_id, n.period, n.dims)
    ) THEN
        RAISE EXCEPTION 'a revision must supersede a revision of the same key'
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO observation_current AS c
        (indicator_code, unit_id, period, dims, value, status, revision_id, submission_id, source)
    SELECT indicator_code, unit_id, period, dims, value, status, id, submission_id, source FROM new_rows
    ON CONFLICT (indicator_code, unit_id, period, dims) DO UPDATE
        SET value = EXCLUDED.value, status = EXCLUDED.status, revision_id = EXCLUDED.revision_id,
            submission_id = EXCLUDED.submission_id, source = EXCLUDED.source;
    INSERT INTO observation_latest AS l
        (indicator_code, unit_id, dims, period, value, status, revision_id, submission_id, source)
    SELECT DISTINCT ON (indicator_code, unit_id, dims)
           indicator_code, unit_id, dims, period, value, status, id, submission_id, source
    FROM new_rows
    ORDER BY indicator_code, unit_id, dims, period DESC, id DESC
    ON CONFLICT (indicator_code, unit_id, dims) DO UPDATE
        SET period = EXCLUDED.period, value = EXCLUDED.value, status = EXCLUDED.status,
            revision_id = EXCLUDED.revision_id, submission_id = EXCLUDED.submission_id,
            source = EXCLUDED.source
        WHERE EXCLUDED.period >= l.period;
    RETURN NULL;
END $$;
CREATE TRIGGER observation_revision_apply AFTER INSERT ON observation_revision
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION observation_revision_apply();

-- Nobody alters a figure without it showing: revisions are never updated or deleted.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER observation_revision_append_only BEFORE UPDATE OR DELETE ON observation_revision
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER observation_revision_no_truncate BEFORE TRUNCATE ON observation_revision
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
