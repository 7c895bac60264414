-- The OAuth2 authorization server's own tables: clients, users, signing keys, codes, refresh
-- tokens, revocations and rate-limit counters. Secrets are stored only as salted scrypt hashes.

CREATE TABLE oauth_client (
    client_id      text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9_-]{8,64}$'),
    secret_hash    text,                         -- NULL for public clients (browser, PKCE only)
    name           text NOT NULL,
    agency_code    text NOT NULL REFERENCES agency (code),
    scopes         text[] NOT NULL,              -- the most a token of this client may carry
    redirect_uris  text[] NOT NULL DEFAULT '{}',
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (secret_hash IS NOT NULL OR cardinality(redirect_uris) > 0)
);

CREATE TABLE hub_user (
    username       text PRIMARY KEY CHECK (username ~ '^[a-z0-9._@-]{3,64}$'),
    password_hash  text NOT NULL,
    agency_code    text NOT NULL REFERENCES agency (code),
    scopes         text[] NOT NULL,              -- what the person is granted
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Asymmetric signing keys; the newest active one signs. A retired key stays published until
-- every token it signed has expired (published_until).
CREATE TABLE signing_key (
    kid             text PRIMARY KEY,
    algorithm       text NOT NULL CHECK (algorithm IN ('ES256')),
    private_jwk     jsonb NOT NULL,
    public_jwk      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz,
    published_until timestamptz
);

CREATE TABLE authorization_code (
    code_hash      text PRIMARY KEY,
    client_id      text NOT NULL REFERENCES oauth_client (client_id),
    username       text NOT NULL REFERENCES hub_user (username),
    redirect_uri   text NOT NULL,
    scope          text NOT NULL,
    code_challenge text NOT NULL,                -- S256 only (RFC 7636 section 4.2)
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE TABLE refresh_token (
    token_hash     text PRIMARY KEY,
    family_id      uuid NOT NULL,
    client_id      text NOT NULL REFERENCES oauth_client (client_id),
    username       text NOT NULL REFERENCES hub_user (username),
    scope          text NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    revoked_at     timestamptz
);
CREATE INDEX refresh_token_family ON refresh_token (family_id);

-- Revoked access tokens by jti, kept until they would have expired anyway.
CREATE TABLE revoked_token (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Fixed-window counters shared by every hub process.
CREATE TABLE rate_limit (
    bucket       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
