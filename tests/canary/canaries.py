"""What the canary tests plant, and how a response is searched for it.

Two kinds of canary, each with values no real figure has:

- ``CANARYSECRET``, a RESTRICTED indicator of the ``environment`` field, which none of the restricted
  callers is granted: its code, every text about it (all carry the nonsense word ``Xquorbiz``), its
  values (``987654.321987``) and its global ids must never reach them.
- ``LAB_PROBE``, an INTERNAL indicator of the ``labour`` field, which the ``region:79`` caller may read,
  but only for the nation and region 79: its value for Ha Noi (``01``) and one of its communes
  (``135791.357913``) must never reach that caller, nor anyone else who may not read the indicator.

A marker is allowed in one place only: an error message of a request that itself named it (``you may
not read indicator CANARYSECRET`` echoes the caller, it tells nothing). Anywhere else, in data, in
extensions, in an error's path or extensions, it is a leak.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CANARY = "CANARYSECRET"
CANARY_FIELD = "environment"  # granted to no restricted caller
CANARY_WORD = "Xquorbiz"  # in every text about the canary, and in no real catalogue text
CANARY_NAME_VI = "Chỉ tiêu mật Xquorbiz (chim hoàng yến)"
CANARY_NAME_EN = "Xquorbiz canary secret figure"
CANARY_DEFINITION = "Xquorbiz: a figure no restricted caller may ever receive"
CANARY_UNIT_OF_MEASURE = "Xquorbiz units"
CANARY_SOURCE_NOTE = "planted by tests/canary (Xquorbiz)"
CANARY_VALUE = Decimal("987654.321987")

PROBE = "LAB_PROBE"  # readable by the region:79 caller, for its region and the nation only
PROBE_FIELD = "labour"
OUT_OF_REGION = ("01", "01001")  # Ha Noi and one of its communes: outside region 79
OUT_OF_REGION_VALUE = Decimal("135791.357913")
IN_REGION_VALUE = Decimal("4321.0001")  # LAB_PROBE for 79: what the region:79 caller does read
NATION_PROBE_VALUE = Decimal("5555.0001")  # LAB_PROBE for the nation: national values stay visible

OPEN_PROBE = "OPEN_PROBE"  # PUBLIC: what an anonymous caller does read of the same reports
OPEN_PROBE_VALUE = Decimal("777.0001")

# Stored by the owner before the hub starts; reports add 2026-Q4 and 2027-Q1 through the API.
PLANTED_PERIODS = ("2026-Q2", "2026-Q3")
CANARY_UNITS = ("VN", "79", "01", "48", "79001")


@dataclass(frozen=True)
class Marker:
    """Something a restricted caller must never receive, found case-insensitively or by its digits."""

    name: str
    text: str
    digits: str | None = None  # a value's digits: found in any numeric formatting (1.2e5, 120000.0, ...)

    def found_in(self, texts: Iterable[str]) -> bool:
        for text in texts:
            if self.text.lower() in text.lower():
                return True
            if self.digits and self.digits in text.replace(".", "").replace(",", ""):
                return True
        return False


def value_marker(name: str, value: Decimal) -> Marker:
    return Marker(name, str(value), str(value).replace(".", "").lstrip("0"))


CANARY_MARKERS = (
    Marker("the canary's code", CANARY),
    Marker("the canary's texts (names, definition, unit of measure)", CANARY_WORD),
    value_marker("the canary's value", CANARY_VALUE),
)
OUT_OF_REGION_MARKER = value_marker("LAB_PROBE's value outside region 79", OUT_OF_REGION_VALUE)

_ID = re.compile(r"^[A-Za-z0-9_-]{6,}$")


def _decoded(text: str) -> str | None:
    """A global id or a cursor, as the text it encodes (``Indicator:CANARYSECRET``), if it is one."""
    if not _ID.match(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def strings_in(value: Any) -> Iterator[str]:
    """Every string and number in a parsed answer, with JSON blocks opened and opaque ids decoded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value
        if value.startswith(("[", "{")):  # a DataBlock sent as a string
            try:
                yield from strings_in(json.loads(value, parse_float=str, parse_int=str))
            except ValueError:
                pass
        decoded = _decoded(value)
        if decoded is not None:
            yield decoded
    elif value is not None:
        yield str(value)


def request_texts(query: str, variables: dict | None = None) -> list[str]:
    """What the caller sent, opaque ids decoded: a marker found here may be echoed in an error message."""
    texts = [query, json.dumps(variables or {}, ensure_ascii=False)]
    texts += [d for token in re.findall(r"[A-Za-z0-9_-]{6,}", query) if (d := _decoded(token))]
    return texts


def find_leaks(body: str, sent: list[str], markers: Iterable[Marker]) -> list[str]:
    """Where each marker appears in a GraphQL answer (raw JSON text), other than an echo in an error message."""
    markers = tuple(markers)
    try:
        # Numbers parsed as text keep their exact digits (a decimal is never rounded through a float here).
        answer = json.loads(body, parse_float=str, parse_int=str)
    except ValueError:
        answer = None
    places: list[tuple[str, list[str]]] = []
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key != "errors":
                places.append((key, list(strings_in(value))))
        for index, error in enumerate(answer.get("errors") or []):
            if not isinstance(error, dict):
                places.append((f"errors[{index}]", list(strings_in(error))))
                continue
            places.append((f"errors[{index}].message", [str(error.get("message"))]))
            rest = {k: v for k, v in error.items() if k != "message"}
            places.append((f"errors[{index}] path/extensions", list(strings_in(rest))))
    echoed = {m for m in markers if m.found_in(sent)}
    leaks = [
        f"{m.name} in {where}"
        for where, texts in places
        for m in markers
        if m.found_in(texts) and not (where.endswith(".message") and m in echoed)
    ]
    # The raw text too, in case the answer is not the JSON it should be.
    if not leaks:
        leaks = [f"{m.name} in the raw answer" for m in markers if m not in echoed and m.found_in([body])]
    return leaks
