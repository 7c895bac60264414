"""GraphiQL for browsers, served by the hub itself: no CDN, no inline script, a strict CSP.

The libraries come from the npm packages pinned in ``package.json``/``package-lock.json`` and
installed by ``npm ci`` into ``settings.assets_dir`` (``node_modules``); nothing is copied into the
repository. Only the files in :data:`PACKAGE_ASSETS` are reachable, each at a URL that names the
installed package version (``/graphiql/assets/graphiql@3.9.0/graphiql.min.js``), so they can be
cached for a year. The hub's own start-up script and stylesheet (``hub/static``) are served at
``/graphiql/static/<name>.<content hash>.<ext>`` for the same reason.

Wiring, in the app factory (when ``settings.graphiql`` is true)::

    routes += graphiql_routes(settings)
    # and in the GET /graphql handler, when the Accept header prefers text/html:
    return graphiql_page(request, settings)

Sign-in (``graphiql-init.js``): the page's "Sign in" control runs the OAuth 2 authorization code
flow with PKCE (S256) as the public client :data:`auth.graphiql_client.GRAPHIQL_CLIENT_ID`, whose
one registered redirect URI is ``settings.issuer_url + "/graphql"``. The script builds its redirect
URI from the page's own origin and refuses to start when the metadata's issuer is another origin,
so the page must be opened at the issuer's address. The authorization server redirects back to
``/graphql?code=…&state=…&iss=…``; ``nrhub.web.graphql_http`` serves this page for that request too,
because a browser GET that accepts HTML and has no ``query`` parameter gets GraphiQL.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from nrhub.auth.graphiql_client import GRAPHIQL_CLIENT_ID
from nrhub.config.errors import ConfigError
from nrhub.config.settings import Settings

GRAPHQL_PATH = "/graphql"
ASSETS_PREFIX = "/graphiql/assets/"
STATIC_PREFIX = "/graphiql/static/"
STATIC_DIR = Path(__file__).resolve().parent / "static"

JS = "text/javascript"
CSS = "text/css"

# (npm package, file inside it, media type), in the order the page loads them. GraphiQL 3's UMD
# bundle expects React 18's UMD globals; the explorer's UMD bundle expects GraphiQL's globals.
PACKAGE_ASSETS: tuple[tuple[str, str, str], ...] = (
    ("graphiql", "graphiql.min.css", CSS),
    ("@graphiql/plugin-explorer", "dist/style.css", CSS),
    ("react", "umd/react.production.min.js", JS),
    ("react-dom", "umd/react-dom.production.min.js", JS),
    ("graphiql", "graphiql.min.js", JS),
    ("@graphiql/plugin-explorer", "dist/index.umd.js", JS),
)
# The hub's own files in hub/static, loaded after the libraries.
STATIC_FILES: tuple[tuple[str, str], ...] = (
    ("graphiql.css", CSS),
    ("graphiql-init.js", JS),
)

DEFAULT_QUERY = """\
query Example {
  indicators(first: 5) {
    edges {
      node {
        code
        nameEn
        unitOfMeasure
      }
    }
  }
}
"""

# Versioned or content-hashed URLs never change content, so browsers need not revalidate them.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    """One file the page may load: where it is on disk and under which URL it is served."""

    url: str
    path: Path
    media_type: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """The allow-list: URL path → asset, built once from the installed packages."""

    assets: tuple[Asset, ...]
    by_url: Mapping[str, Asset]

    def urls(self, media_type: str) -> list[str]:
        return [asset.url for asset in self.assets if asset.media_type == media_type]


def graphiql_routes(settings: Settings) -> list[Route]:
    """Routes serving exactly the allow-listed files; anything else under the prefixes is a 404.

    Raises :class:`ConfigError` when the npm packages are not installed, so a hub that would serve a
    broken GraphiQL does not start (``npm ci`` installs them; ``HUB_GRAPHIQL=false`` turns GraphiQL off).
    """
    manifest = load_manifest(settings.assets_dir)

    async def serve(request: Request) -> Response:
        # The URL is only ever a key into the allow-list, never joined onto a directory, so
        # ``..``, encoded slashes or absolute paths cannot reach any other file.
        asset = manifest.by_url.get(request.url.path)
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
        return FileResponse(asset.path, media_type=asset.media_type, headers=headers)

    return [
        Route(ASSETS_PREFIX + "{name:path}", serve, methods=["GET", "HEAD"], name="graphiql_asset"),
        Route(STATIC_PREFIX + "{name:path}", serve, methods=["GET", "HEAD"], name="graphiql_static"),
    ]


def graphiql_page(request: Request, settings: Settings, *, subscriptions: bool = False) -> HTMLResponse:
    """The GraphiQL page, with its Content-Security-Policy; for GET /graphql when Accept prefers HTML.

    ``subscriptions``: the hub accepts graphql-transport-ws on /graphql, so the page tells GraphiQL
    to run subscription operations over a WebSocket (with the signed-in token in connection_init).
    The hub has no subscriptions yet (issue 7); the app factory passes True once it has.
    """
    manifest = load_manifest(settings.assets_dir)
    nonce = secrets.token_urlsafe(18)
    body = _render(manifest, nonce, subscriptions=subscriptions)
    headers = {
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        # The nonce is new on every response, so a stored copy would carry a stale one.
        "Cache-Control": "no-store",
        # /graphql answers HTML or JSON depending on Accept.
        "Vary": "Accept",
    }
    return HTMLResponse(body, headers=headers)


def content_security_policy(style_nonce: str) -> str:
    """The page's policy (CSP Level 3). Everything the page loads comes from the hub's own origin.

    - scripts: 'self' only; the page has no inline script and no event-handler attribute, and none
      of the bundles needs eval.
    - styles: 'self' plus a per-response nonce, no 'unsafe-inline'. GraphiQL's stylesheets are files,
      and styles React and CodeMirror set through the CSSOM (element.style) are not governed by CSP.
      The one <style> element GraphiQL creates at run time, react-style-singleton's scroll lock while
      a dialog is open, has dynamic content (the scrollbar width), so a hash cannot allow it; it takes
      the nonce that graphiql-init.js hands over. Known, harmless refusal: a Markdown table's
      ``style="text-align:…"`` in a schema description loses its alignment.
    - fonts: GraphiQL's CSS embeds its fonts as data: URLs; img-src data: for its inline SVG images.
    - connect-src 'self': the fetcher talks to /graphql on this origin only, and sign-in to the
      same origin's /.well-known/oauth-authorization-server, /oauth/token and /oauth/revoke (the
      authorization page itself is a navigation, which connect-src does not govern). In CSP Level 3
      'self' also matches ws: and wss: on this host and port, for subscriptions.
    """
    directives = (
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'self' 'nonce-{style_nonce}'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
    return "; ".join(directives)


@functools.lru_cache(maxsize=4)
def load_manifest(assets_dir: Path) -> Manifest:
    """Resolve the allow-list against the installed packages; a missing file is a ConfigError."""
    assets = []
    for package, file, media_type in PACKAGE_ASSETS:
        package_dir = assets_dir / package
        version = _installed_version(package_dir)
        assets.append(Asset(f"{ASSETS_PREFIX}{package}@{version}/{file}", package_dir / file, media_type))
    for name, media_type in STATIC_FILES:
        path = STATIC_DIR / name
        stem, _, ext = name.rpartition(".")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        assets.append(Asset(f"{STATIC_PREFIX}{stem}.{digest}.{ext}", path, media_type))
    for asset in assets:
        if not asset.path.is_file():
            raise ConfigError(f"GraphiQL asset {asset.path} is missing; run `npm ci` in the hub's directory")
    return Manifest(tuple(assets), MappingProxyType({asset.url: asset for asset in assets}))


def _installed_version(package_dir: Path) -> str:
    try:
        meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"GraphiQL's npm package {package_dir.name!r} is not installed in {package_dir.parent}: "
            "run `npm ci` in the hub's directory, or set HUB_GRAPHIQL=false"
        ) from None
    return str(meta["version"])


_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="graphiql-style-nonce" content="{nonce}">
<title>GraphiQL · National reporting hub</title>
{styles}
{scripts}
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}" data-client-id="{client_id}"{subscriptions} data-default-query="{query}">
<p class="graphiql-hub-loading">Loading GraphiQL…</p>
<noscript><p class="graphiql-hub-loading">GraphiQL needs JavaScript.</p></noscript>
</div>
</body>
</html>
"""


def _render(manifest: Manifest, nonce: str, *, subscriptions: bool = False) -> str:
    esc = functools.partial(html.escape, quote=True)
    styles = "\n".join(f'<link rel="stylesheet" href="{esc(url)}">' for url in manifest.urls(CSS))
    # defer: run in document order once the page is parsed, so #graphiql exists for the init script.
    scripts = "\n".join(f'<script defer src="{esc(url)}"></script>' for url in manifest.urls(JS))
    return _PAGE.format(
        nonce=esc(nonce),
        styles=styles,
        scripts=scripts,
        endpoint=esc(GRAPHQL_PATH),
        client_id=esc(GRAPHIQL_CLIENT_ID),
        # A path on this origin; the script turns it into the ws:// or wss:// URL.
        subscriptions=f' data-subscription-endpoint="{esc(GRAPHQL_PATH)}"' if subscriptions else "",
        query=esc(DEFAULT_QUERY),
    )
