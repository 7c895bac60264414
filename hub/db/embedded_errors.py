"""The one error of the embedded PostgreSQL's lifecycle, apart so that each of its modules can raise it."""

from __future__ import annotations

from nrhub.auth.operator_errors import OperatorError


class EmbeddedStartError(OperatorError):
    """The embedded PostgreSQL could not be initialised, started or shared; the message says why, in one line."""
