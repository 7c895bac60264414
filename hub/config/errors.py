"""The error every configuration problem raises: its message names the setting, file or table."""

from __future__ import annotations

from nrhub.auth.operator_errors import OperatorError


class ConfigError(OperatorError):
    """A setting is missing, malformed or unknown; the message names it."""
