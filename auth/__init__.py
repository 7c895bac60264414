"""Who is calling and what they may read: principals, grants, and (later) the OAuth2 server."""
