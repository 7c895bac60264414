-- Validation rules (issue 19, item 3; after DHIS2's validation rules): a left side, an operator and a
-- right side, each an arithmetic expression over indicator cells, e.g. DOSSIERS_ONLINE <= DOSSIERS_TOTAL.
-- A rule breached by a report is an ERROR (the report cannot be submitted) or a WARNING (it can,
-- with a written explanation, kept with the submission for its reviewers).

CREATE TABLE validation_rule (
    code          text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,63}$'),
    name_vi       text NOT NULL CHECK (btrim(name_vi) <> ''),
    name_en       text NOT NULL CHECK (btrim(name_en) <> ''),
    -- Stored as the hub's parser prints them (resolvers/rule_expressions.py): one way to write each.
    left_side     text NOT NULL CHECK (left_side <> ''),
    operator      text NOT NULL CHECK (operator IN ('==', '!=', '<', '<=', '>', '>=')),
    right_side    text NOT NULL CHECK (right_side <> ''),
    importance    text NOT NULL CHECK (importance IN ('ERROR', 'WARNING')),
    -- DHIS2's missing value strategies, applied to each side: skip the rule when any (the default)
    -- or all of a side's cells are missing, or never (a missing cell counts as 0).
    missing_value text NOT NULL DEFAULT 'SKIP_IF_ANY_VALUE_MISSING'
                       CHECK (missing_value IN ('SKIP_IF_ANY_VALUE_MISSING', 'SKIP_IF_ALL_VALUES_MISSING',
                                                'NEVER_SKIP')),
    -- Every indicator either side names, derived by the parser: who may read a breach's figures.
    indicators    text[] NOT NULL CHECK (cardinality(indicators) >= 1)
);
CREATE INDEX validation_rule_indicators ON validation_rule USING gin (indicators);

-- The regimes a rule is checked under; a rule naming none is checked under every regime whose form
-- holds one of its indicators.
CREATE TABLE validation_rule_regime (
    rule_code   text NOT NULL REFERENCES validation_rule (code) ON DELETE CASCADE,
    regime_code text NOT NULL REFERENCES regime (code),
    PRIMARY KEY (rule_code, regime_code)
);

-- Why a report was submitted despite a WARNING rule it breaches. Written in the transaction that
-- submits the report, while it is still a draft, and never changed after: like its values.
-- rule_code is not a foreign key: the explanation outlives a rule that is later deleted.
CREATE TABLE submission_explanation (
    submission_id bigint NOT NULL REFERENCES submission (id),
    rule_code     text NOT NULL,
    explanation   text NOT NULL CHECK (btrim(explanation) <> '' AND length(explanation) <= 4000),
    PRIMARY KEY (submission_id, rule_code)
);

CREATE FUNCTION submission_explanation_of_draft() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM submission WHERE id = NEW.submission_id AND status = 'DRAFT') THEN
        RAISE EXCEPTION 'submission_explanation: the report is not a draft'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER submission_explanation_of_draft BEFORE INSERT ON submission_explanation
    FOR EACH ROW EXECUTE FUNCTION submission_explanation_of_draft();
CREATE TRIGGER submission_explanation_append_only BEFORE UPDATE OR DELETE ON submission_explanation
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER submission_explanation_no_truncate BEFORE TRUNCATE ON submission_explanation
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The request role does what request code does (0012): admins define rules through the audited
-- upsertValidationRule and deleteValidationRule (a rule's regimes are replaced whole); submitReport
-- appends explanations.
GRANT SELECT, INSERT, UPDATE, DELETE ON validation_rule TO nrhub_app;
GRANT SELECT, INSERT, DELETE ON validation_rule_regime TO nrhub_app;
GRANT SELECT, INSERT ON submission_explanation TO nrhub_app;
