-- Min-max outlier bounds generated from history (issue 19, item 3; DHIS2's "min-max outlier generation").
--
-- A regime chooses how a report's values are compared with the unit's own history: the modified
-- z-score computed on the fly (the default, resolvers/outliers.py), bounds generated beforehand and
-- stored here, or neither. An administrator generates the bounds of a regime's form for its
-- reporters' units (or one unit): for each cell, the mean of its recent history plus and minus k
-- standard deviations, rounded outward to the indicator's decimals. A value outside them is a warning.

-- No row: Z_SCORE. resolvers/outlier_bounds.py names the same three (OUTLIER_METHODS).
CREATE TABLE outlier_method (
    regime_code text PRIMARY KEY REFERENCES regime (code),
    method      text NOT NULL CHECK (method IN ('Z_SCORE', 'MIN_MAX', 'NONE'))
);

CREATE TABLE outlier_bounds (
    regime_code    text NOT NULL REFERENCES regime (code),
    indicator_code text NOT NULL REFERENCES indicator (code),
    unit_id        integer NOT NULL REFERENCES admin_unit (id),
    dims           text NOT NULL CHECK (is_dims_key(dims)),
    min_value      numeric NOT NULL,
    max_value      numeric NOT NULL,
    -- How they were computed, for the reviewers who read them and the administrator who regenerates them.
    mean           numeric NOT NULL,
    std_dev        numeric NOT NULL CHECK (std_dev >= 0),
    k              numeric NOT NULL CHECK (k > 0 AND k <= 10),
    history_size   smallint NOT NULL CHECK (history_size > 0),
    first_period   text NOT NULL CHECK (is_period(first_period)),
    last_period    text NOT NULL CHECK (is_period(last_period)),
    generated_by   text NOT NULL,
    generated_at   timestamptz NOT NULL,
    PRIMARY KEY (regime_code, indicator_code, unit_id, dims),
    CHECK (min_value <= max_value)
);

-- The bounds are figures of the history they summarise: readable under the same grants as the
-- observations (migration 0013), and written only by the audited generation, which runs in a
-- workflow transaction (hub.every_row) because it reads every row of the history.
ALTER TABLE outlier_bounds ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON outlier_bounds FOR SELECT TO nrhub_app USING (
    (SELECT hub_reads_every_row())
    OR ((SELECT hub_readable_indicators()) ? indicator_code
        AND width_bucket(unit_id, (SELECT hub_readable_units())) % 2 = 1));
CREATE POLICY generated ON outlier_bounds FOR INSERT TO nrhub_app WITH CHECK ((SELECT hub_reads_every_row()));
CREATE POLICY regenerated ON outlier_bounds FOR DELETE TO nrhub_app USING ((SELECT hub_reads_every_row()));

-- The request role does what request code does (0012): admins set a regime's method
-- (setOutlierMethod) and generate its bounds (generateOutlierBounds, replacing those of the same
-- units); reports and reviewers read them.
GRANT SELECT, INSERT, UPDATE ON outlier_method TO nrhub_app;
GRANT SELECT, INSERT, DELETE ON outlier_bounds TO nrhub_app;
