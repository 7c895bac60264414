"""The root of every error that ends an ``nrhub`` command with one line and exit status 1.

    OperatorError
    ├── ConfigError             nrhub.config.settings        a setting is missing, malformed or unknown
    ├── DatabaseUnreachable     nrhub.db.pools        the database cannot be reached
    │   └── UnsafeRequestRole                       request connections could step out of their grants
    ├── MigrationError          nrhub.db.migrate         an applied migration was edited, or one fails
    ├── EmbeddedStartError      nrhub.db.embedded_errors the embedded PostgreSQL does not start
    ├── DemoScaleMismatch       hub.demo.load       a demo load over the other scale's data
    ├── PortInUse               nrhub.cli.main             the address cannot be bound
    ├── AuditFailure            nrhub.cli.audit       the audit log does not verify
    ├── RegimeFileError         nrhub.cli.regimes     a regimes file cannot be read or applied
    ├── CatalogueFileError      nrhub.cli.catalogue   a catalogue file cannot be read or applied
    ├── AgencyError             nrhub.cli.agencies    an agency cannot be added
    ├── ClientError             auth.clients        a request about clients or people cannot be done
    └── ScopeError              auth.scopes         a scope string names what does not exist

``nrhub.cli.main`` catches this root alone: an operator's mistake or the environment's fault is said in its
message, never in a traceback, and a new kind of operator error needs no change there. Anything else
escaping a command is a bug and keeps its traceback.

It lives in the bottom layer because every layer raises such errors (``auth`` the client and scope
ones) and a layer may only import the layers below it (tests/foundation/test_layers.py).
"""

from __future__ import annotations


class OperatorError(Exception):
    """An ``nrhub`` command cannot do what was asked; the message says why, in one line, for the operator."""
