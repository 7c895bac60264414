-- Four eyes on every figure that becomes current (issue 16, holes 1 and 10).
--
-- A correction of an accepted report is a new version of that report, holding the accepted cells
-- with the corrected ones changed; it is submitted and reviewed like the first version, and when
-- it is accepted the version it corrects becomes SUPERSEDED. Whoever submitted a version never
-- reviews it, whatever agencies the regime names: the database refuses it too.

ALTER TABLE submission
    ADD COLUMN submitted_by      text,
    ADD COLUMN correction_reason text CHECK (correction_reason IS NULL OR btrim(correction_reason) <> '');

-- Versions submitted before this migration: who submitted them is in their audit entry.
UPDATE submission s SET submitted_by = coalesce(a.actor_user, a.actor_client, 'unknown')
FROM audit_entry a
WHERE a.action = 'submission.submit' AND a.subject = 'submission:' || s.id AND s.status <> 'DRAFT';
UPDATE submission SET submitted_by = 'unknown' WHERE status <> 'DRAFT' AND submitted_by IS NULL;

ALTER TABLE submission DROP CONSTRAINT submission_status_check;
ALTER TABLE submission
    ADD CONSTRAINT submission_status_check
        CHECK (status IN ('DRAFT', 'SUBMITTED', 'RETURNED', 'ACCEPTED', 'SUPERSEDED', 'LOCKED')),
    ADD CONSTRAINT submission_submitted_by CHECK ((status = 'DRAFT') = (submitted_by IS NULL)),
    ADD CONSTRAINT submission_four_eyes CHECK (reviewed_by IS NULL OR reviewed_by <> submitted_by);

-- At most one version in progress (a draft or awaiting review) and one in force (accepted or
-- locked) per report: a correction in progress stands beside the version it corrects.
DROP INDEX submission_one_open;
CREATE UNIQUE INDEX submission_one_in_progress ON submission (regime_code, agency_code, unit_id, period)
    WHERE status IN ('DRAFT', 'SUBMITTED');
CREATE UNIQUE INDEX submission_one_in_force ON submission (regime_code, agency_code, unit_id, period)
    WHERE status IN ('ACCEPTED', 'LOCKED');
