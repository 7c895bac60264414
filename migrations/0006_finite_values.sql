-- Values are finite numbers. 0002 and 0003 checked "value = value", but PostgreSQL orders numeric
-- NaN equal to itself, so that check let NaN through; numeric also has ±Infinity since v14.
ALTER TABLE observation_revision
    ADD CONSTRAINT observation_revision_value_finite CHECK (value NOT IN ('NaN', 'Infinity', '-Infinity'));
ALTER TABLE submission_value
    ADD CONSTRAINT submission_value_finite CHECK (value NOT IN ('NaN', 'Infinity', '-Infinity'));
