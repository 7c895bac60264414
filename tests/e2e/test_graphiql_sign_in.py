"""GraphiQL sign-in, end to end: a person signs in from the hub's GraphiQL page in headless Chromium.

The hub is the real app (nrhub.web.app.create_app) on the session's demo database, served by uvicorn on
127.0.0.1 in a background thread, with its issuer set to the address the browser uses, so the
GraphiQL client's one registered redirect URI is exactly ``<that origin>/graphql``. An ASGI
wrapper records every HTTP request the hub receives (method, path, Authorization, body, status);
the browser's own view comes from the DevTools Network domain. Chromium is driven through the
DevTools protocol (tests/e2e/devtools.py): real clicks and typing, on the hub's pages only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from nrhub.auth.users import create_user
from nrhub.config.settings import Settings
from nrhub.web.app import create_app
from tests.e2e.devtools import Page, chromium_page, needs_chromium
from tests.e2e.live_server import bound_socket, live_server
from tests.e2e.test_graphiql import Resources

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "nrhub-graphiql"
PASSWORD = "labour-analyst-passphrase"
SCOPES = ["data:read", "field:labour"]
ME_QUERY = "{ me { user indicators } }"

pytestmark = pytest.mark.slow


# --- the hub, as a browser reaches it -----------------------------------------------------------


@dataclass
class Seen:
    """One HTTP request as the hub received it."""

    method: str
    path: str
    query: str
    authorization: str | None
    body: bytearray = field(default_factory=bytearray)
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class Recorder:
    """ASGI wrapper around the hub: notes each HTTP request it receives, then passes it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        entry = Seen(scope["method"], scope["path"], scope["query_string"].decode(), headers.get("authorization"))
        self.seen.append(entry)

        async def receive_body() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                entry.body += message.get("body", b"")
            return message

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        await self.app(scope, receive_body, send_status)


@dataclass
class Person:
    username: str
    password: str
    labour_indicators: list[str]


@dataclass
class LiveHub:
    url: str
    recorder: Recorder
    registered_redirect_uris: list[str]

    def since(self, mark: int) -> list[Seen]:
        return self.recorder.seen[mark:]


@pytest.fixture(scope="module")
async def person(database_url: str) -> Person:
    conn = await asyncpg.connect(database_url)
    try:
        username = f"analyst-{uuid.uuid4().hex[:8]}"
        await create_user(conn, username=username, password=PASSWORD, agency="BTC", scopes=SCOPES)
        # Independently of the hub's policy code: the catalogue's indicators of the labour field.
        labour = await conn.fetchval("SELECT array_agg(code) FROM indicator WHERE field = 'labour'")
    finally:
        await conn.close()
    assert labour, "the demo catalogue has no indicator in the labour field"
    return Person(username, PASSWORD, sorted(labour))


@pytest.fixture(scope="module")
async def hub(database_url: str, person: Person) -> AsyncIterator[LiveHub]:
    sock = bound_socket()
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    settings = Settings(
        port=port,
        issuer=origin,
        introspection=True,
        public_read=True,  # so that a connection without the person's token could watch a PUBLIC indicator
        assets_dir=ROOT / "node_modules",
        # The token endpoint's counters live in the shared test database, per address; other
        # modules' token requests from 127.0.0.1 must not push these over the limit.
        token_rate_limit=10_000,
    )
    app = create_app(settings, database_url)
    recorder = Recorder(app)
    # The hub registers its GraphiQL client at start (lifespan), with the issuer's /graphql.
    with live_server(recorder, sock=sock, lifespan="on", ws="auto", start_timeout=30) as url:
        assert url == origin
        conn = await asyncpg.connect(database_url)
        try:
            registered = await conn.fetchval("SELECT redirect_uris FROM oauth_client WHERE client_id = $1", CLIENT_ID)
        finally:
            await conn.close()
        live = LiveHub(url, recorder, list(registered))
        yield live


# --- what a person does in the browser ------------------------------------------------------------

AUTH_TEXT = "((document.querySelector('.graphiql-hub-auth') || {}).textContent || '')"
QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESPONSE_PANE = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror"
TOKENS = "JSON.parse(sessionStorage.getItem('nrhub.graphiql.tokens') || 'null')"


def open_graphiql(page: Page, url: str) -> None:
    page.navigate(url)
    page.wait_for(
        "!!document.querySelector('.graphiql-container .graphiql-query-editor .CodeMirror')"
        " && !!document.querySelector('.graphiql-hub-auth-button')",
        f"GraphiQL with its sign-in control at {url}",
    )


def sign_in(page: Page, person: Person) -> dict[str, Any]:
    """From a signed-out GraphiQL page to "Signed in as …"; what the authorization page was asked."""
    page.wait_for(f"{AUTH_TEXT}.includes('Sign in')", "the Sign in button")
    page.click(".graphiql-hub-auth-button")
    page.wait_for(
        "location.pathname === '/oauth/authorize' && !!document.querySelector('input[name=password]')",
        "the hub's sign-in page",
    )
    asked = {
        "href": page.evaluate("location.href"),
        "pending": json.loads(page.evaluate("sessionStorage.getItem('nrhub.graphiql.sign-in')") or "null"),
    }
    page.click("input[name=username]")
    page.type_text(person.username)
    page.click("input[name=password]")
    page.type_text(person.password)
    page.click("button[name=decision][value=allow]")
    page.wait_for(
        f"location.pathname === '/graphql' && {AUTH_TEXT}.includes('Signed in as')",
        "GraphiQL to say who signed in",
    )
    return asked


def run_in_graphiql(page: Page, query: str) -> Any:
    """Type ``query`` into GraphiQL's editor, press its run button, and read the result pane."""
    page.click(".graphiql-query-editor .CodeMirror-lines")
    page.press_select_all()
    page.type_text(query)
    assert page.evaluate(f"{QUERY_EDITOR}.getValue()") == query
    # GraphiQL takes in an edit after a short debounce (its operation name, its stored query); a
    # person never clicks within those milliseconds, so wait until it has stored the new query.
    page.wait_for(f"localStorage.getItem('graphiql:query') === {json.dumps(query)}", "GraphiQL to take the edit in")
    # Blank the result pane first, so that the same answer twice is still seen arriving.
    page.evaluate(f"{RESPONSE_PANE}.setValue('')")
    page.click('button[aria-label^="Execute query"]')
    text = page.wait_for(f"{RESPONSE_PANE}.getValue()", "a result in GraphiQL's result pane")
    return json.loads(text)


def security_messages(page: Page) -> list[str]:
    """Content-Security-Policy refusals and uncaught exceptions the browser reported so far."""
    refused = [e["entry"]["text"] for e in page.events_named("Log.entryAdded") if e["entry"]["source"] == "security"]
    thrown = [
        str(e["exceptionDetails"].get("exception", {}).get("description"))
        for e in page.events_named("Runtime.exceptionThrown")
    ]
    return refused + thrown


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def graphql_posts(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if s.method == "POST" and s.path == "/graphql"]


# --- the tests -----------------------------------------------------------------------------------


@needs_chromium
def test_a_person_signs_in_and_reads_me_in_graphiql(hub: LiveHub, person: Person, tmp_path: Path) -> None:
    redirect_uri = f"{hub.url}/graphql"
    # The hub registered exactly the address the page will use (issuer = this origin).
    assert hub.registered_redirect_uris == [redirect_uri]
    mark = len(hub.recorder.seen)
    with chromium_page(tmp_path / "profile") as page:
        open_graphiql(page, f"{hub.url}/graphql")
        asked = sign_in(page, person)

        # The authorization request: code flow with S256 PKCE, this client, the registered URI.
        href = urlsplit(asked["href"])
        params = {k: v[0] for k, v in parse_qs(href.query).items()}
        assert f"{href.scheme}://{href.netloc}{href.path}" == f"{hub.url}/oauth/authorize"
        assert params.keys() == {
            "response_type",
            "client_id",
            "redirect_uri",
            "code_challenge",
            "code_challenge_method",
            "state",
        }
        assert params["response_type"] == "code"
        assert params["client_id"] == CLIENT_ID
        assert params["redirect_uri"] == redirect_uri
        assert params["code_challenge_method"] == "S256"
        verifier = asked["pending"]["verifier"]
        assert len(verifier) >= 43 and set(verifier) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert params["code_challenge"] == s256(verifier)
        assert len(params["state"]) >= 22 and params["state"] == asked["pending"]["state"]

        # Back on GraphiQL: code and state are gone from the address, the verifier from storage.
        assert page.evaluate("location.href") == redirect_uri
        assert page.evaluate("sessionStorage.getItem('nrhub.graphiql.sign-in')") is None
        assert page.evaluate(AUTH_TEXT).endswith(f"Signed in as {person.username}Sign out")

        result = run_in_graphiql(page, ME_QUERY)
        assert result == {"data": {"me": {"user": person.username, "indicators": person.labour_indicators}}}

        access = page.evaluate(TOKENS)["access"]
        # The tokens stay in this tab's sessionStorage: nothing of them in localStorage, where
        # GraphiQL keeps its tabs, history and query, nor in a cookie.
        stored = page.evaluate("Object.keys(localStorage).map((key) => localStorage.getItem(key)).join(' ')")
        assert "graphiql:query" in page.evaluate("Object.keys(localStorage).join(' ')")
        assert access not in stored and page.evaluate("document.cookie") == ""
        shot = page.screenshot(tmp_path / "graphiql-signed-in.png")
        requests_seen_by_browser = page.events_named("Network.requestWillBeSent")
        problems = security_messages(page)

    assert shot.stat().st_size > 20_000  # a rendered GraphiQL, not a blank or error page
    assert problems == []

    seen = hub.since(mark)
    # The code was redeemed once, by form POST, with the verifier and the same redirect URI.
    token_requests = [s for s in seen if s.path == "/oauth/token"]
    assert len(token_requests) == 1
    form = token_requests[0].form()
    assert form == {
        "client_id": CLIENT_ID,
        "grant_type": "authorization_code",
        "code": form["code"],
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    assert token_requests[0].status == 200
    # Before sign-in GraphiQL asked anonymously; from the token on, every request carried it.
    redeemed = seen.index(token_requests[0])
    before, after = graphql_posts(seen[:redeemed]), graphql_posts(seen[redeemed:])
    assert before and all(s.authorization is None for s in before)
    operations = [s.json().get("operationName") or s.json()["query"] for s in after]
    assert "IntrospectionQuery" in operations and "SignedInAs" in operations and ME_QUERY in operations
    assert [s.authorization for s in after] == [f"Bearer {access}"] * len(after)
    assert {s.status for s in after} == {200}
    # The browser's own record agrees: the run of the me query went out with the header.
    sent = [
        r["request"]
        for r in requests_seen_by_browser
        if r["request"]["url"] == redirect_uri and r["request"]["method"] == "POST"
    ]
    me_sent = [r for r in sent if ME_QUERY in r.get("postData", "")]
    assert len(me_sent) == 1
    headers = {k.lower(): v for k, v in me_sent[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {access}"


def revoke(hub: LiveHub, token: str) -> None:
    response = httpx.post(f"{hub.url}/oauth/revoke", data={"token": token, "client_id": CLIENT_ID}, timeout=10)
    assert response.status_code == 200


@needs_chromium
def test_a_rejected_token_is_refreshed_once_then_the_page_signs_out(
    hub: LiveHub, person: Person, tmp_path: Path
) -> None:
    with chromium_page(tmp_path / "profile") as page:
        open_graphiql(page, f"{hub.url}/graphql")
        sign_in(page, person)
        first = page.evaluate(TOKENS)

        # The access token stops working: GraphiQL's next request gets a 401, uses the refresh
        # token once, and repeats the request with the new access token.
        revoke(hub, first["access"])
        mark = len(hub.recorder.seen)
        result = run_in_graphiql(page, ME_QUERY)
        assert result["data"]["me"]["user"] == person.username
        second = page.evaluate(TOKENS)
        assert second["access"] != first["access"] and second["refresh"] != first["refresh"]
        trail = [(s.path, s.authorization, s.status) for s in hub.since(mark)]
        assert trail == [
            ("/graphql", f"Bearer {first['access']}", 401),
            ("/oauth/token", None, 200),
            ("/graphql", f"Bearer {second['access']}", 200),
        ]
        assert hub.since(mark)[1].form()["grant_type"] == "refresh_token"
        assert hub.since(mark)[1].form()["refresh_token"] == first["refresh"]
        assert f"Signed in as {person.username}" in page.evaluate(AUTH_TEXT)

        # Now the refresh token is revoked too (its family): one refresh attempt, then signed out.
        revoke(hub, second["refresh"])
        revoke(hub, second["access"])
        mark = len(hub.recorder.seen)
        result = run_in_graphiql(page, ME_QUERY)
        assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        page.wait_for(f"{AUTH_TEXT}.includes('Sign in')", "the page to show it is signed out")
        assert "Your session has ended" in page.evaluate(AUTH_TEXT)
        assert page.evaluate(TOKENS) is None
        trail = [(s.path, s.status) for s in hub.since(mark)]
        assert trail == [("/graphql", 401), ("/oauth/token", 400)]

        # Signed out, GraphiQL goes on as an anonymous caller, without a header.
        mark = len(hub.recorder.seen)
        result = run_in_graphiql(page, ME_QUERY)
        assert result["data"]["me"]["user"] is None
        assert [s.authorization for s in graphql_posts(hub.since(mark))] == [None]


@needs_chromium
def test_sign_out_forgets_and_revokes_the_tokens(hub: LiveHub, person: Person, tmp_path: Path) -> None:
    with chromium_page(tmp_path / "profile") as page:
        open_graphiql(page, f"{hub.url}/graphql")
        sign_in(page, person)
        tokens = page.evaluate(TOKENS)
        page.click(".graphiql-hub-auth-button")  # "Sign out"
        page.wait_for(f"{AUTH_TEXT}.endsWith('Sign in')", "the Sign in button again")
        assert page.evaluate(TOKENS) is None
        assert security_messages(page) == []

    # Revoked at the hub, not only forgotten by the tab (the page revokes in the background).
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        status = httpx.post(
            f"{hub.url}/graphql",
            json={"query": "{ me { user } }"},
            headers={"Authorization": f"Bearer {tokens['access']}"},
            timeout=10,
        ).status_code
        if status == 401:
            break
        time.sleep(0.1)
    assert status == 401
    refreshed = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh"], "client_id": CLIENT_ID},
        timeout=10,
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


@needs_chromium
@pytest.mark.parametrize(
    ("case", "started", "expected"),
    [
        ("no sign-in was started in this tab", False, "does not belong to a sign-in started in this tab"),
        ("the state is not the one sent", True, "does not belong to a sign-in started in this tab"),
        ("another issuer answers", True, "came from another issuer"),
    ],
)
def test_an_answer_that_does_not_match_the_sign_in_is_refused(
    hub: LiveHub, tmp_path: Path, case: str, started: bool, expected: str
) -> None:
    mark = len(hub.recorder.seen)
    with chromium_page(tmp_path / "profile") as page:
        state, issuer = "forged", hub.url
        if started:
            open_graphiql(page, f"{hub.url}/graphql")
            page.click(".graphiql-hub-auth-button")
            page.wait_for("location.pathname === '/oauth/authorize'", "the hub's sign-in page")
            pending = json.loads(page.evaluate("sessionStorage.getItem('nrhub.graphiql.sign-in')"))
            if case == "another issuer answers":
                state, issuer = pending["state"], "https://mix-up.example"
        # As if an attacker's page sent the browser here with a code of the attacker's own.
        open_graphiql(page, f"{hub.url}/graphql?{urlencode({'code': 'attackers-code', 'state': state, 'iss': issuer})}")
        message = page.wait_for(f"{AUTH_TEXT}.includes('Sign-in refused') && {AUTH_TEXT}", "the refusal")
        assert expected in message
        assert page.evaluate("location.href") == f"{hub.url}/graphql"
        assert page.evaluate(TOKENS) is None
        assert page.evaluate("sessionStorage.getItem('nrhub.graphiql.sign-in')") is None  # one use only
    assert [s for s in hub.since(mark) if s.path == "/oauth/token"] == []


@needs_chromium
def test_sign_in_from_another_origin_than_the_issuer_says_where_it_works(hub: LiveHub, tmp_path: Path) -> None:
    # Same server, other origin: its redirect URI would not be the registered one.
    other = hub.url.replace("127.0.0.1", "localhost")
    with chromium_page(tmp_path / "profile") as page:
        open_graphiql(page, f"{other}/graphql")
        page.click(".graphiql-hub-auth-button")
        message = page.wait_for(f"{AUTH_TEXT}.includes('Sign-in failed') && {AUTH_TEXT}", "the explanation")
        assert f"sign-in works on this hub at {hub.url}/graphql" in message
        assert page.evaluate("location.origin") == other


@needs_chromium
def test_subscriptions_carry_the_token_in_connection_init(hub: LiveHub, person: Person, tmp_path: Path) -> None:
    """GraphiQL runs subscriptions over the hub's graphql-transport-ws endpoint with the signed-in token
    in connection_init. CPI_YOY is a PUBLIC indicator an anonymous connection could watch (the hub reads
    publicly); the person, granted only the labour field, is refused it: so the connection carried the
    person's token."""
    with chromium_page(tmp_path / "profile") as page:
        open_graphiql(page, f"{hub.url}/graphql")
        sign_in(page, person)
        page.wait_for(f"{AUTH_TEXT}.includes('Signed in as')", "the page to know who is signed in")
        result = run_in_graphiql(page, 'subscription Watch { observationsChanged(indicators: ["CPI_YOY"]) { resync } }')
        problems = security_messages(page)
    # connect-src 'self' admits ws:// to the same host and port: no policy refusal. GraphiQL 3's bundled
    # graphql-ws client, after showing the errors, also leaves a promise rejected with the errors
    # array unhandled ("Array(1)"); that is the library's own, not a refusal or a hub error.
    assert [p for p in problems if p != "Array(1)"] == []
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", result


def test_the_hubs_graphiql_page_references_nothing_outside_the_hub(hub: LiveHub) -> None:
    for path in ("/graphql", "/graphql?code=abc&state=xyz&iss=x"):  # the sign-in answer gets the page too
        page = httpx.get(f"{hub.url}{path}", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        parser = Resources()
        parser.feed(page.text)
        parser.close()
        assert parser.inline == []
        assert parser.urls
        for _, _, url in parser.urls:
            parts = urlsplit(url)
            assert url.startswith("/") and not url.startswith("//") and not parts.netloc, url
            assert httpx.get(hub.url + url, timeout=10).status_code == 200, url
        assert "http://" not in page.text and "https://" not in page.text
        assert 'data-client-id="nrhub-graphiql"' in page.text
        assert "data-subscription-endpoint" in page.text  # the hub serves graphql-transport-ws on /graphql
    # The scripts the page loads name no other host either (the sign-in control among them).
    own = [u for _, _, u in parser.urls if u.startswith("/graphiql/static/")]
    for url in own:
        text = httpx.get(hub.url + url, timeout=10).text
        assert "http://" not in text and "https://" not in text, url
