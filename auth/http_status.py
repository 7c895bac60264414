"""One table from error to HTTP status, for every endpoint that answers an error over HTTP.

Keyed by error code, so every layer can use it without importing the layers that raise:

- the hub's codes (``resolvers.errors``: the ``HubError`` tree; ``auth.resource.Unauthorized`` is
  UNAUTHENTICATED), as the upload endpoint and the GraphQL endpoint's refusals answer them;
- OAuth 2 error codes (authlib's ``OAuth2Error.error``), as the authorization server answers them;
- PAYLOAD_TOO_LARGE, the body limit's (``auth.body_limit``).

GraphQL over HTTP decides its own statuses for GraphQL responses (nrhub.web.graphql_http): a request
error is 400 under ``application/graphql-response+json`` whatever its code, and 200 under JSON.
"""

from __future__ import annotations

from types import MappingProxyType

from authlib.oauth2.rfc6749.errors import OAuth2Error

STATUS_BY_CODE = MappingProxyType(
    {
        # The hub's codes (DESIGN, API conventions).
        "UNAUTHENTICATED": 401,
        "FORBIDDEN": 403,
        "NOT_FOUND": 404,
        "BAD_USER_INPUT": 400,
        "CONFLICT": 409,
        "SOURCE_UNAVAILABLE": 503,
        "RATE_LIMITED": 429,
        "QUERY_TOO_COMPLEX": 400,
        "INTERNAL": 500,
        # HTTP's own (RFC 9110 section 15.5.14).
        "PAYLOAD_TOO_LARGE": 413,
        # OAuth 2. RFC 6749 section 5.2: 400, but invalid_client is 401 (a MUST when the client
        # authenticated with the Authorization header, and we answer every failure alike).
        "invalid_request": 400,
        "invalid_client": 401,
        "invalid_grant": 400,
        "unauthorized_client": 400,
        "unsupported_grant_type": 400,
        "invalid_scope": 400,
        "unsupported_token_type": 400,  # RFC 7009 section 2.2.1
        "slow_down": 429,  # RFC 8628 section 3.5's code, with HTTP's Too Many Requests
    }
)


def status_for(error: BaseException) -> int:
    """The HTTP status of an error: by its code (``code``, or an OAuth error's ``error``); 500 when unknown."""
    code = error.error if isinstance(error, OAuth2Error) else getattr(error, "code", None)
    return STATUS_BY_CODE.get(code, 500) if isinstance(code, str) else 500
