"""The hub's own browser client for GraphiQL sign-in, registered (and kept current) at start.

It is a public client (no secret, PKCE only) whose redirect URIs are the hubs' /graphql pages.
It may carry any scope the hub knows of and is restricted to no region, so a person signing in
through GraphiQL gets exactly their own grants: with no scope asked for, a token carries client
scopes ∩ person scopes (auth.scopes.intersect), the person's region restriction included.
"""

from __future__ import annotations

import asyncpg

from nrhub.auth.scopes import FIXED

GRAPHIQL_CLIENT_ID = "nrhub-graphiql"

_UPSERT = """
INSERT INTO oauth_client (client_id, name, agency_code, scopes, redirect_uris)
VALUES ($1, 'GraphiQL (built in)', 'VPCP', $2, $3)
ON CONFLICT (client_id) DO UPDATE SET scopes = EXCLUDED.scopes,
    -- Several hubs (issuers) may share one database: each adds its own page, none removes another's.
    redirect_uris = ARRAY(SELECT DISTINCT unnest(oauth_client.redirect_uris || EXCLUDED.redirect_uris) ORDER BY 1)
"""
_SELECT_SCOPES = """
SELECT array_agg(s ORDER BY s) FROM (
    SELECT 'field:' || code AS s FROM indicator_field
    UNION SELECT 'indicator:' || code FROM indicator
) AS all_scopes
"""


async def ensure_graphiql_client(pool: asyncpg.Pool, issuer: str) -> None:
    # Before migrations (readyz says 503 then) or before any catalogue, there is nothing to do.
    if not await pool.fetchval("SELECT to_regclass('oauth_client') IS NOT NULL"):
        return
    if not await pool.fetchval("SELECT 1 FROM agency WHERE code = 'VPCP'"):
        return
    catalogue = await pool.fetchval(_SELECT_SCOPES) or []
    await pool.execute(_UPSERT, GRAPHIQL_CLIENT_ID, sorted(FIXED) + list(catalogue), [f"{issuer}/graphql"])
