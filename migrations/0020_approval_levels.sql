-- Approval levels and consolidation (issue 19, DHIS2's data approval workflow).
--
-- A regime names the chain of levels a submitted report climbs: for example the provincial
-- committee approves what its statistics office prepared (REPORTER: the reporting agency itself,
-- another person), the ministry accepts (AGENCY), the Government Office accepts last (AGENCY). A
-- commune's report is approved by the committee of the province above it (UNIT_ABOVE). A regime
-- without levels has one: its receiving agency, as before this migration.
--
-- Each decision is a row appended to submission_approval, never changed: who acted at which level,
-- when, why. The levels a report has climbed follow from its rows (resolvers/approvals.py).

ALTER TABLE agency DROP CONSTRAINT agency_kind_check, DROP CONSTRAINT agency_check;
ALTER TABLE agency
    ADD CONSTRAINT agency_kind_check CHECK (kind IN ('GOVERNMENT_OFFICE', 'MINISTRY', 'MINISTERIAL_AGENCY',
                                                     'PROVINCIAL_COMMITTEE', 'COMMUNE_COMMITTEE', 'PARTNER')),
    -- A committee governs one unit; other agencies none.
    ADD CONSTRAINT agency_check CHECK ((kind IN ('PROVINCIAL_COMMITTEE', 'COMMUNE_COMMITTEE')) = (unit_id IS NOT NULL));

CREATE TABLE regime_level (
    regime_code text NOT NULL REFERENCES regime (code),
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 9),
    name_vi     text NOT NULL CHECK (btrim(name_vi) <> ''),
    name_en     text NOT NULL CHECK (btrim(name_en) <> ''),
    acted_by    text NOT NULL CHECK (acted_by IN ('REPORTER', 'UNIT_ABOVE', 'AGENCY')),
    agency_code text REFERENCES agency (code),
    CHECK ((acted_by = 'AGENCY') = (agency_code IS NOT NULL)),
    PRIMARY KEY (regime_code, level)
);
CREATE INDEX regime_level_agency ON regime_level (agency_code);

ALTER TABLE regime
    -- The level whose approval makes the values current observations; null: the last level.
    ADD COLUMN publish_level smallint CHECK (publish_level >= 1),
    -- The regime of the reports a report of this one is consolidated from (its units' children's).
    ADD COLUMN consolidates text REFERENCES regime (code) CHECK (consolidates <> code);

-- The accepted reports of the units below a consolidated cell was computed from; null: entered.
ALTER TABLE submission_value ADD COLUMN consolidated_from bigint[];

CREATE TABLE submission_approval (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id bigint NOT NULL REFERENCES submission (id),
    level         smallint NOT NULL CHECK (level >= 1),
    action        text NOT NULL CHECK (action IN ('APPROVE', 'RETURN', 'UNAPPROVE')),
    agency_code   text NOT NULL REFERENCES agency (code),
    acted_by      text NOT NULL,
    acted_at      timestamptz NOT NULL,
    reason        text CHECK (reason IS NULL OR (btrim(reason) <> '' AND length(reason) <= 2000)),
    CHECK (action <> 'RETURN' OR reason IS NOT NULL)
);
CREATE INDEX submission_approval_of ON submission_approval (submission_id, id);

-- Four eyes at every level, in the database too: a decision is on a submitted report, never by
-- whoever submitted it.
CREATE FUNCTION submission_approval_four_eyes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM submission s WHERE s.id = NEW.submission_id AND s.status = 'SUBMITTED'
                                                 AND s.submitted_by <> NEW.acted_by) THEN
        RAISE EXCEPTION 'submission_approval: a decision is on a submitted report, by another than its submitter'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER submission_approval_four_eyes BEFORE INSERT ON submission_approval
    FOR EACH ROW EXECUTE FUNCTION submission_approval_four_eyes();
CREATE TRIGGER submission_approval_append_only BEFORE UPDATE OR DELETE ON submission_approval
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A regime's levels: those it names, else one, its receiving agency. The one place the implicit
-- level is made: the workflow, the Regime type and report_approvers read it from here.
CREATE FUNCTION regime_levels(p_regime text)
    RETURNS TABLE (level smallint, name_vi text, name_en text, acted_by text, agency_code text)
    LANGUAGE sql STABLE AS $$
    SELECT l.level, l.name_vi, l.name_en, l.acted_by, l.agency_code
    FROM regime_level l WHERE l.regime_code = p_regime
    UNION ALL
    SELECT 1::smallint, 'Cơ quan nhận báo cáo', 'Receiving agency', 'AGENCY', r.receiving_agency
    FROM regime r WHERE r.code = p_regime AND NOT EXISTS (SELECT 1 FROM regime_level WHERE regime_code = p_regime)
    ORDER BY 1
$$;

-- The agency that acts at a level on the report of p_reporter for unit p_unit.
CREATE FUNCTION level_agency(p_acted_by text, p_agency text, p_reporter text, p_unit integer)
    RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE p_acted_by
        WHEN 'AGENCY' THEN p_agency
        WHEN 'REPORTER' THEN p_reporter
        ELSE (SELECT a.code FROM admin_unit u JOIN agency a ON a.unit_id = u.parent_id
              WHERE u.id = p_unit AND a.valid_to IS NULL ORDER BY a.valid_from DESC LIMIT 1)
    END
$$;

-- Every agency that acts on the report at some level: they see it, as its receiving agency does.
CREATE FUNCTION report_approvers(p_regime text, p_reporter text, p_unit integer)
    RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(level_agency(l.acted_by, l.agency_code, p_reporter, p_unit)), '{}')
    FROM regime_levels(p_regime) AS l
$$;

GRANT SELECT, INSERT, DELETE ON regime_level TO nrhub_app;
GRANT SELECT, INSERT ON submission_approval TO nrhub_app;
