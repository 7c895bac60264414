"""GraphiQL as a browser gets it: the page, its Content-Security-Policy, and the allow-listed assets.

A tiny Starlette app carries only nrhub.web.graphiql's routes plus a /graphql route (GET: the page; POST:
a stub schema), served by a real uvicorn on 127.0.0.1, so these tests need neither the database nor
the hub's real schema. The browser checks run Debian's chromium headless when it is installed.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from nrhub.config.errors import ConfigError
from nrhub.config.settings import Settings
from nrhub.web.graphiql import DEFAULT_QUERY, graphiql_page, graphiql_routes
from tests.e2e.devtools import CHROMIUM, FLAGS, needs_chromium
from tests.e2e.live_server import live_server

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("csp_probe.js")
SETTINGS = Settings(assets_dir=ROOT / "node_modules")


@strawberry.type
class Indicator:
    code: str
    name_en: str
    unit_of_measure: str


@strawberry.type
class IndicatorEdge:
    node: Indicator


@strawberry.type
class IndicatorConnection:
    edges: list[IndicatorEdge]


@strawberry.type
class Query:
    @strawberry.field
    def indicators(self, first: int = 10) -> IndicatorConnection:
        node = Indicator(code="GDP_GROWTH", name_en="GDP growth rate", unit_of_measure="%")
        return IndicatorConnection(edges=[IndicatorEdge(node=node)][:first])


STUB_SCHEMA = strawberry.Schema(query=Query)


class StubHub:
    """The routes under test plus a stand-in /graphql that records what the page's fetcher sends."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[
                Route("/graphql", self.graphql, methods=["GET", "POST"]),
                Route("/probed", self.probed_page),
                Route("/probed-with-inline-style", self.probed_page_with_inline_style),
                Route("/test/csp-probe.js", self.probe),
                *graphiql_routes(SETTINGS),
            ]
        )

    async def graphql(self, request: Request) -> Response:
        if request.method == "GET":
            return graphiql_page(request, SETTINGS)
        body = await request.json()
        self.posts.append({"operation": body.get("operationName"), "accept": request.headers.get("accept")})
        result = await STUB_SCHEMA.execute(
            body["query"], body.get("variables"), operation_name=body.get("operationName")
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        return JSONResponse(payload)

    async def probe(self, request: Request) -> Response:
        return FileResponse(PROBE, media_type="text/javascript")

    async def probed_page(self, request: Request) -> Response:
        """The real page with the test probe loaded first, before any of the page's own resources."""
        page = graphiql_page(request, SETTINGS)
        html = page.body.decode().replace("<head>", '<head>\n<script src="/test/csp-probe.js"></script>', 1)
        return HTMLResponse(html, headers=_page_headers(page))

    async def probed_page_with_inline_style(self, request: Request) -> Response:
        """A control: the probed page plus one inline <style>, which the policy must refuse."""
        page = await self.probed_page(request)
        html = page.body.decode().replace("</head>", "<style>body { color: red }</style>\n</head>", 1)
        return HTMLResponse(html, headers=_page_headers(page))


def _page_headers(page: Response) -> dict[str, str]:
    return {k: v for k, v in page.headers.items() if k.lower() not in {"content-length", "content-type"}}


@pytest.fixture(scope="module")
def stub_hub() -> StubHub:
    return StubHub()


@pytest.fixture(scope="module")
def base_url(stub_hub: StubHub) -> Iterator[str]:
    with live_server(stub_hub.app) as url:
        yield url


@pytest.fixture(scope="module")
def page(base_url: str) -> httpx.Response:
    response = httpx.get(f"{base_url}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    return response


class Resources(HTMLParser):
    """Every URL-bearing attribute, every inline script or style, and every inline event handler."""

    URL_ATTRIBUTES: ClassVar[set[str]] = {"src", "href", "srcset", "action", "formaction", "poster", "data"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES and value is not None:
                self.urls.append((tag, name, value))
            if name.startswith("on") or name == "style":
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "style" or (tag == "script" and "src" not in values):
            self.inline.append(f"<{tag}> without src")
        self._open = tag

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open == "script" and data.strip():
            self.inline.append("<script> with content")


def parse(page: httpx.Response) -> Resources:
    parser = Resources()
    parser.feed(page.text)
    parser.close()
    return parser


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


def test_page_is_served_with_a_strict_content_security_policy(page: httpx.Response) -> None:
    policy = directives(page.headers["content-security-policy"])
    nonce = re.search(r'<meta name="graphiql-style-nonce" content="([^"]+)">', page.text)
    assert nonce is not None
    assert policy == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", f"'nonce-{nonce.group(1)}'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"


def test_each_page_gets_its_own_style_nonce(base_url: str, page: httpx.Response) -> None:
    again = httpx.get(f"{base_url}/graphql", headers={"Accept": "text/html"})
    first = directives(page.headers["content-security-policy"])["style-src"]
    second = directives(again.headers["content-security-policy"])["style-src"]
    assert first != second


def test_page_has_no_inline_script_style_or_event_handler(page: httpx.Response) -> None:
    assert parse(page).inline == []


def test_page_configures_graphiql_for_this_origin(page: httpx.Response) -> None:
    assert 'data-endpoint="/graphql"' in page.text
    assert "query Example {\n  indicators(first: 5) {" in page.text
    assert re.sub(r"\s+", " ", DEFAULT_QUERY).strip() == (
        "query Example { indicators(first: 5) { edges { node { code nameEn unitOfMeasure } } } }"
    )


def test_every_resource_is_a_same_origin_path_that_answers(base_url: str, page: httpx.Response) -> None:
    resources = parse(page).urls
    kinds = {(tag, attribute) for tag, attribute, _ in resources}
    assert kinds == {("link", "href"), ("script", "src")}
    expected_type = {"script": "text/javascript; charset=utf-8", "link": "text/css; charset=utf-8"}
    for tag, _, url in resources:
        parts = urlsplit(url)
        assert url.startswith("/") and not url.startswith("//"), url
        assert not parts.scheme and not parts.netloc, url
        response = httpx.get(base_url + url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == expected_type[tag], url
        assert "immutable" in response.headers["cache-control"], url
        assert len(response.content) > 1000 or url.endswith(".css"), url


def test_explorer_plugin_and_pinned_versions_are_loaded(page: httpx.Response) -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    urls = [url for _, _, url in parse(page).urls]
    for package in ("graphiql", "@graphiql/plugin-explorer", "react", "react-dom"):
        version = lock[f"node_modules/{package}"]["version"]
        assert any(url.startswith(f"/graphiql/assets/{package}@{version}/") for url in urls), package
    assert any(url.endswith("/dist/index.umd.js") for url in urls)


def test_no_absolute_url_in_the_page_or_the_hubs_own_files(base_url: str, page: httpx.Response) -> None:
    own = [url for _, _, url in parse(page).urls if url.startswith("/graphiql/static/")]
    assert len(own) == 2
    for text in [page.text, *(httpx.get(base_url + url).text for url in own)]:
        assert "http://" not in text
        assert "https://" not in text


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql/assets/graphiql@3.9.0/package.json",
        "/graphiql/assets/graphiql@3.9.0/graphiql.min.js.map",
        "/graphiql/assets/react@18.3.1/umd/react.development.js",
        "/graphiql/assets/graphiql@0.0.1/graphiql.min.js",
        "/graphiql/assets/graphiql/graphiql.min.js",
        "/graphiql/assets/",
        "/graphiql/static/graphiql-init.js",
        "/graphiql/static/graphiql-init.000000000000.js",
    ],
)
def test_files_outside_the_allow_list_are_not_found(base_url: str, path: str) -> None:
    assert (ROOT / "node_modules" / "graphiql" / "package.json").is_file()
    assert httpx.get(base_url + path).status_code == 404


@pytest.mark.parametrize(
    "raw_path",
    [
        "/graphiql/assets/../../pyproject.toml",
        "/graphiql/assets/graphiql@3.9.0/../../../pyproject.toml",
        "/graphiql/assets/..%2F..%2Fpyproject.toml",
        "/graphiql/assets/%2e%2e/%2e%2e/pyproject.toml",
        "/graphiql/static/../graphiql.py",
        "/graphiql/static/..%2Fgraphiql.py",
        "/graphiql/assets//etc/passwd",
        "/graphiql/assets/%2Fetc%2Fpasswd",
    ],
)
def test_traversal_out_of_the_assets_is_not_found(base_url: str, raw_path: str) -> None:
    # http.client sends the path byte for byte; httpx would normalise the dot segments away.
    netloc = urlsplit(base_url).netloc
    connection = http.client.HTTPConnection(netloc, timeout=5)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404
    assert b"[project]" not in body and b"root:" not in body and b"import" not in body


def test_missing_npm_packages_stop_the_start_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="npm ci"):
        graphiql_routes(Settings(assets_dir=tmp_path))


# --- in a real browser -------------------------------------------------------------------------


def chromium(tmp_path: Path, url: str, *extra: str) -> str:
    """Run headless chromium on ``url`` with a fresh profile; returns stdout (the DOM for --dump-dom)."""
    command = [
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,900",
        # Virtual time: the page's timers run until this budget is spent, then the DOM is dumped.
        "--virtual-time-budget=15000",
        *extra,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def probe_results(dom: str) -> dict[str, Any]:
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None, dom[:500]
    attributes = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', root.group(0)))
    unescaped = {k: v.replace("&quot;", '"').replace("&amp;", "&") for k, v in attributes.items()}
    return {
        "done": unescaped.get("data-probe-done") == "true",
        "steps": unescaped.get("data-probe-steps", ""),
        "violations": json.loads(unescaped.get("data-csp-violations", "[]")),
        "errors": json.loads(unescaped.get("data-js-errors", "[]")),
    }


@pytest.mark.slow
@needs_chromium
def test_graphiql_renders_with_explorer_and_no_csp_violation(
    base_url: str,
    stub_hub: StubHub,
    tmp_path: Path,
) -> None:
    stub_hub.posts.clear()
    dom = chromium(tmp_path, f"{base_url}/probed#settings", "--dump-dom")
    result = probe_results(dom)
    assert result["violations"] == []
    assert result["errors"] == []
    assert result["done"], result["steps"]
    assert 'class="graphiql-container"' in dom
    assert "graphiql-explorer-root" in dom
    assert "Example" in dom and "unitOfMeasure" in dom  # the default query, in the editor
    assert '"GDP_GROWTH"' in dom  # ... run through the fetcher, its result shown
    # The dialog's scroll lock inserted a <style>; it applied because it carried the page's nonce.
    # (Chromium hides a nonce once applied, so the dumped attribute is empty.)
    assert re.search(r"<style[^>]*\snonce=", dom)
    # The fetcher asked this origin's /graphql for the schema, preferring the GraphQL response type.
    introspections = [post for post in stub_hub.posts if post["operation"] == "IntrospectionQuery"]
    assert introspections
    assert introspections[0]["accept"].startswith("application/graphql-response+json")
    assert "Example" in [post["operation"] for post in stub_hub.posts]


@pytest.mark.slow
@needs_chromium
def test_probe_sees_a_violation_when_there_is_one(base_url: str, tmp_path: Path) -> None:
    dom = chromium(tmp_path, f"{base_url}/probed-with-inline-style", "--dump-dom")
    violations = probe_results(dom)["violations"]
    assert [v["directive"] for v in violations] == ["style-src-elem"]


@pytest.mark.slow
@needs_chromium
def test_screenshot_of_graphiql(base_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "graphiql.png"
    chromium(tmp_path, f"{base_url}/probed", f"--screenshot={shot}")
    # A rendered GraphiQL is a large, varied image; a blank or error page compresses to a few KB.
    assert shot.stat().st_size > 20_000
