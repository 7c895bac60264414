-- Reminders and outbound webhooks (issue 19, item 5; docs/reports.md, "Reminders and webhooks").
--
-- The hub's scheduler records each reminder it owes once (reminder: one row per regime, reporting
-- agency, period and kind) and, in the same transaction, one delivery per webhook that should hear
-- of it (webhook_delivery, the transactional outbox). A crash after the commit loses nothing: the
-- delivery is still PENDING and is sent after the restart; a crash before it sends nothing twice,
-- because the reminder's key is unique. Both are written by the hub's owner connection only.

CREATE TABLE webhook (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agency_code text NOT NULL REFERENCES agency (code),
    url         text NOT NULL CHECK (url ~ '^https?://'),
    -- What it is told of: BEFORE_DEADLINE and/or OVERDUE reminders.
    events      text[] NOT NULL CHECK (events <> '{}' AND events <@ ARRAY['BEFORE_DEADLINE', 'OVERDUE']),
    disabled    boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX webhook_agency ON webhook (agency_code) WHERE NOT disabled;

-- The HMAC key, in its own table: the hub must read it to sign, so it cannot be stored hashed like a
-- client secret; the request role may write it (registerWebhook) but never read it back.
CREATE TABLE webhook_secret (
    webhook_id bigint PRIMARY KEY REFERENCES webhook (id),
    secret     text NOT NULL CHECK (length(secret) >= 32)
);

CREATE TABLE reminder (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('BEFORE_DEADLINE', 'OVERDUE')),
    regime_code text NOT NULL REFERENCES regime (code),
    agency_code text NOT NULL REFERENCES agency (code),
    period      text NOT NULL,
    deadline    timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (regime_code, agency_code, period, kind)
);

CREATE TABLE webhook_delivery (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      bigint NOT NULL REFERENCES webhook (id),
    reminder_id     bigint NOT NULL REFERENCES reminder (id),
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (reminder_id, webhook_id),  -- one delivery per reminder and webhook, however often it is enqueued
    CHECK ((status = 'DELIVERED') = (delivered_at IS NOT NULL))
);
CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_delivery_of ON webhook_delivery (webhook_id, id);

-- The request role registers, lists and disables its agency's webhooks and reads their deliveries
-- (confined to the caller's agency by the resolvers, resolvers/webhooks.py); it writes no reminder or
-- delivery and reads no secret (tests/trust/test_roles.py).
GRANT SELECT, INSERT, UPDATE ON webhook TO nrhub_app;
GRANT INSERT ON webhook_secret TO nrhub_app;
GRANT SELECT ON webhook_delivery TO nrhub_app;
