"""The root of every error that ends an ``nrhub`` command with one line and exit status 1.

    OperatorError
    ├── ConfigError             hub.settings        a setting is missing, malformed or unknown
    ├── DatabaseUnreachable     hub.database        the database cannot be reached
    │   └── UnsafeRequestRole                       request connections could step out of their grants
    ├── MigrationError          hub.migrate         an applied migration was edited, or one fails
    ├── EmbeddedStartError      hub.embedded        the embedded PostgreSQL does not start
    ├── DemoScaleMismatch       hub.demo.load       a demo load over the other scale's data
    ├── PortInUse               hub.cli             the address cannot be bound
    ├── AuditFailure            hub.cli_audit       the audit log does not verify
    ├── RegimeFileError         hub.cli_regimes     a regimes file cannot be read or applied
    ├── CatalogueFileError      hub.cli_catalogue   a catalogue file cannot be read or applied
    ├── AgencyError             hub.cli_agencies    an agency cannot be added
    ├── ClientError             auth.clients        a request about clients or people cannot be done
    └── ScopeError              auth.scopes         a scope string names what does not exist

``hub.cli`` catches this root alone: an operator's mistake or the environment's fault is said in its
message, never in a traceback, and a new kind of operator error needs no change there. Anything else
escaping a command is a bug and keeps its traceback.

It lives in the bottom layer because every layer raises such errors (``auth`` the client and scope
ones) and a layer may only import the layers below it (tests/foundation/test_layers.py).
"""

from __future__ import annotations


class OperatorError(Exception):
    """An ``nrhub`` command cannot do what was asked; the message says why, in one line, for the operator."""
