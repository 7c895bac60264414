"""Headless Chromium driven through the Chrome DevTools Protocol, for the browser tests.

Debian's ``chromium`` runs with a fresh profile; the test talks to its page target over the DevTools
WebSocket (the ``websockets`` package, which uvicorn[standard] brings) and clicks and types with the
Input domain, as a person would. Events (Network, Log, Runtime) are kept in ``events`` in arrival order.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NO_CHROMIUM = "Debian's chromium is not installed (/usr/bin/chromium): `make test` installs it as root, or apt-get install chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=NO_CHROMIUM)

# The flags this environment needs (no sandbox, no GPU, nothing fetched from Google's servers).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)
START_TIMEOUT = 30.0


class DevToolsError(Exception):
    """A DevTools command failed, or the page's JavaScript threw."""


class Page:
    """One page target: commands, events, and the few gestures the tests need."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._last_id += 1
        call_id = self._last_id
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.001)))
            if message.get("id") == call_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value. Navigations in between are tolerated."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except DevToolsError as exc:  # e.g. the execution context went away with a navigation
                last_error = exc
                value = None
            if value:
                return value
            time.sleep(0.05)
        where = self._describe()
        raise AssertionError(f"timed out waiting for {what}; last error: {last_error}; page: {where}")

    def _describe(self) -> str:
        with contextlib.suppress(DevToolsError, TimeoutError):
            return str(self.evaluate("location.href + ' :: ' + (document.body ? document.body.innerText : '')"))[:1500]
        return "(unavailable)"

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise DevToolsError(f"navigating to {url}: {result['errorText']}")

    def click(self, selector: str) -> None:
        """A real left click (mouse events at the element's centre), after scrolling it into view."""
        found = json.dumps(selector)
        point = self.wait_for(
            f"""(() => {{
                const element = document.querySelector({found});
                if (!element) return null;
                element.scrollIntoView({{block: 'center', inline: 'center'}});
                const box = element.getBoundingClientRect();
                return box.width && box.height ? [box.x + box.width / 2, box.y + box.height / 2] : null;
            }})()""",
            f"{selector} to be on screen",
        )
        x, y = point
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", clickCount=1)

    def type_text(self, text: str) -> None:
        """Text into the focused element, as a keyboard (or an input method) would enter it."""
        self.call("Input.insertText", text=text)

    def press_select_all(self) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                type=kind,
                modifiers=2,  # Ctrl
                key="a",
                code="KeyA",
                windowsVirtualKeyCode=65,
            )

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def events_named(self, method: str) -> list[dict[str, Any]]:
        """Events of one kind so far; a round trip first, so that those already sent have arrived."""
        self.evaluate("0")
        return [event["params"] for event in self.events if event["method"] == method]


@contextlib.contextmanager
def chromium_page(profile: Path, *, width: int = 1400, height: int = 900) -> Iterator[Page]:
    """Start headless chromium with a fresh profile in ``profile``; yield its first page, with the
    Network, Log and Runtime domains enabled."""
    profile.mkdir(parents=True, exist_ok=True)
    log_path = profile.parent / f"{profile.name}-chromium.log"
    command = [
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--remote-debugging-port=0",  # the chosen port is written to <profile>/DevToolsActivePort
        "about:blank",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        port = _devtools_port(process, profile / "DevToolsActivePort", log_path)
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        with connect(page_url, max_size=None, open_timeout=10) as socket:
            page = Page(socket)
            page.call("Network.enable")
            page.call("Log.enable")
            page.call("Runtime.enable")
            page.call("Page.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _devtools_port(process: subprocess.Popen[bytes], port_file: Path, log_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"chromium exited with {process.returncode}: {log_path.read_text(errors='replace')}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(port_file.read_text().splitlines()[0])
        time.sleep(0.05)
    raise AssertionError(f"chromium did not open its DevTools port: {log_path.read_text(errors='replace')}")
