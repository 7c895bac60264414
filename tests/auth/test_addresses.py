"""Whose address a request is counted under: the peer's, or, only when the peer is a trusted proxy
(HUB_TRUSTED_PROXIES), the address that proxy says it forwarded for."""

from __future__ import annotations

import pytest

from nrhub.auth.address import caller_address, parse_proxies
from nrhub.config.errors import ConfigError
from nrhub.config.settings import load_settings

PROXIES = parse_proxies("10.0.0.0/8, 192.0.2.1")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),  # not a proxy: its header is ignored
        ("10.1.2.3", ["203.0.113.9"], "203.0.113.9"),
        ("192.0.2.1", [], "192.0.2.1"),  # a proxy that forwarded for no one
        # The nearest untrusted hop: what a caller wrote in the header before the proxies is not believed.
        ("10.1.2.3", ["6.6.6.6, 203.0.113.9, 10.9.9.9"], "203.0.113.9"),
        ("10.1.2.3", ["6.6.6.6", "203.0.113.9"], "203.0.113.9"),  # repeated headers read as one list
        ("10.1.2.3", ["6.6.6.6, not-an-address"], "10.1.2.3"),  # garbage stops the walk at the last proxy
        ("10.1.2.3", ["10.4.4.4"], "10.4.4.4"),  # every hop a proxy: the farthest one
        ("2001:db8:1:2:3:4:5:6", [], "2001:db8:1:2::/64"),  # IPv6 callers hold a /64 each
        (None, [], "unknown"),
    ],
)
def test_caller_address(peer: str | None, forwarded_for: list[str], expected: str) -> None:
    assert caller_address(peer, forwarded_for, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_believed() -> None:
    assert caller_address("127.0.0.1", ["203.0.113.9"], parse_proxies("")) == "127.0.0.1"


def test_trusted_proxies_setting_is_checked_at_start() -> None:
    settings = load_settings(environ={"HUB_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8, ::1"})
    assert settings.trusted_proxies == "127.0.0.1, 10.0.0.0/8, ::1"
    with pytest.raises(ConfigError, match=r"trusted_proxies.*10\.0\.0\.0/33"):
        load_settings(environ={"HUB_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/33"})
