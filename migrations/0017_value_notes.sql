-- Notes on a report's figures (issue 19, DHIS2's comments and follow-up flags).
--
-- The reporter writes a comment with a cell while the report is a draft (it is part of the cell, and
-- freezes with it when submitted). The receiving agency marks a cell of a submitted report for
-- follow-up, with a note, and later clears it: each mark is a row appended, never changed, the
-- latest one per cell being the cell's state.

ALTER TABLE submission_value
    ADD COLUMN comment text CHECK (comment IS NULL OR (btrim(comment) <> '' AND length(comment) <= 2000));

CREATE TABLE value_follow_up (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id  bigint NOT NULL,
    indicator_code text NOT NULL,
    unit_id        integer NOT NULL,
    dims           text NOT NULL,
    follow_up      boolean NOT NULL,
    note           text NOT NULL CHECK (btrim(note) <> '' AND length(note) <= 2000),
    marked_by      text NOT NULL,
    marked_at      timestamptz NOT NULL,
    FOREIGN KEY (submission_id, indicator_code, unit_id, dims)
        REFERENCES submission_value (submission_id, indicator_code, unit_id, dims)
);
CREATE INDEX value_follow_up_cell ON value_follow_up (submission_id, indicator_code, unit_id, dims, id);

GRANT SELECT, INSERT ON value_follow_up TO nrhub_app;
CREATE TRIGGER value_follow_up_append_only BEFORE UPDATE OR DELETE ON value_follow_up
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
