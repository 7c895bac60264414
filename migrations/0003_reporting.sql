-- Reporting regimes (chế độ báo cáo, Decree 09/2019/NĐ-CP) and the submissions made under them.

CREATE TABLE regime (
    code               text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,63}$'),
    name_vi            text NOT NULL CHECK (name_vi <> ''),
    name_en            text NOT NULL CHECK (name_en <> ''),
    legal_basis        text NOT NULL,
    issuing_agency     text NOT NULL REFERENCES agency (code),
    receiving_agency   text NOT NULL REFERENCES agency (code),
    frequency          text NOT NULL CHECK (frequency IN ('M', 'Q', 'S', 'A')),
    -- Data cut-off window: from day cutoff_start_day of the month before the period's last month
    -- to day cutoff_end_day of its last month (Decree 09/2019 default: 15th to 14th).
    cutoff_start_day   smallint NOT NULL DEFAULT 15 CHECK (cutoff_start_day BETWEEN 1 AND 28),
    cutoff_end_day     smallint NOT NULL DEFAULT 14 CHECK (cutoff_end_day BETWEEN 1 AND 28),
    deadline_rule      text NOT NULL CHECK (deadline_rule IN ('DAYS_AFTER_CUTOFF',
                                                              'WORKING_DAYS_AFTER_CUTOFF',
                                                              'DAY_OF_NEXT_MONTH')),
    deadline_value     smallint NOT NULL CHECK (deadline_value BETWEEN 0 AND 60),
    observation_status text NOT NULL DEFAULT 'OFFICIAL'
                            CHECK (observation_status IN ('ESTIMATE', 'PRELIMINARY', 'OFFICIAL')),
    -- A jump from the previous period larger than this share is flagged (a warning, not an error).
    jump_threshold     numeric CHECK (jump_threshold > 0),
    CHECK (deadline_rule <> 'DAY_OF_NEXT_MONTH' OR deadline_value BETWEEN 1 AND 28)
);

CREATE TABLE regime_reporter (
    regime_code text NOT NULL REFERENCES regime (code),
    agency_code text NOT NULL REFERENCES agency (code),
    PRIMARY KEY (regime_code, agency_code)
);

-- The form: which indicator cells a report under the regime carries, and their rules.
CREATE TABLE regime_item (
    regime_code    text NOT NULL REFERENCES regime (code),
    indicator_code text NOT NULL REFERENCES indicator (code),
    dims           text NOT NULL DEFAULT '' CHECK (is_dims_key(dims)),
    required       boolean NOT NULL DEFAULT true,
    min_value      numeric,
    max_value      numeric,
    PRIMARY KEY (regime_code, indicator_code, dims),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);

CREATE TABLE submission (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    regime_code    text NOT NULL REFERENCES regime (code),
    agency_code    text NOT NULL REFERENCES agency (code),
    unit_id        integer NOT NULL REFERENCES admin_unit (id),
    period         text NOT NULL CHECK (is_period(period)),
    version        integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    status         text NOT NULL DEFAULT 'DRAFT'
                        CHECK (status IN ('DRAFT', 'SUBMITTED', 'RETURNED', 'ACCEPTED', 'LOCKED')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL,
    deadline       timestamptz NOT NULL,
    submitted_at   timestamptz,
    on_time        boolean,
    reviewed_at    timestamptz,
    reviewed_by    text,
    return_reason  text,
    UNIQUE (regime_code, agency_code, unit_id, period, version),
    -- The server sets submitted_at; timeliness follows from it and from the deadline.
    CHECK ((status = 'DRAFT') = (submitted_at IS NULL)),
    CHECK ((submitted_at IS NULL) = (on_time IS NULL)),
    CHECK (on_time IS NULL OR on_time = (submitted_at <= deadline)),
    CHECK (status <> 'RETURNED' OR (return_reason IS NOT NULL AND return_reason <> ''))
);
-- At most one open (non-returned) version of a report at a time.
CREATE UNIQUE INDEX submission_one_open ON submission (regime_code, agency_code, unit_id, period)
    WHERE status <> 'RETURNED';
CREATE INDEX submission_regime_period ON submission (regime_code, period);

CREATE TABLE submission_value (
    submission_id  bigint NOT NULL REFERENCES submission (id),
    indicator_code text NOT NULL REFERENCES indicator (code),
    unit_id        integer NOT NULL REFERENCES admin_unit (id),
    dims           text NOT NULL DEFAULT '' CHECK (is_dims_key(dims)),
    value          numeric NOT NULL CHECK (value = value),
    PRIMARY KEY (submission_id, indicator_code, unit_id, dims)
);

ALTER TABLE observation_revision
    ADD CONSTRAINT observation_revision_submission FOREIGN KEY (submission_id) REFERENCES submission (id);
