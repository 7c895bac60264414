"""uvicorn's WebSocket protocol, whose connection is freed as soon as its socket closes.

uvicorn's sans-I/O WebSocket protocol drives a ``websockets.server.ServerProtocol``, which parses
with a generator of its own methods kept in its ``parser`` attribute: the generator's frame holds
the connection and the connection holds the generator. That cycle outlives the socket, and with it
everything the connection holds, above all its permessage-deflate contexts (about 50 KiB of zlib
state), until a full pass of the cyclic collector, which a serving process runs rarely
(nrhub.web.collector). Under subscribers that come and go, the soak (issue 18) saw the RSS grow by
about 40 KiB per closed connection. Closing the generator once the socket is lost breaks the cycle,
and reference counting frees the connection at once.

Relies on websockets' ``Protocol.parser`` (outside its documented API) and on uvicorn's protocol
never stepping its connection after ``connection_lost`` (it refuses to send once disconnected, and
the transport delivers no more data): tests/reports/test_live_resilience.py (a closed connection is
freed at once) fails when an upgrade of either changes that.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol (its ``ws="websockets-sansio"``), freed when the socket closes."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.conn.parser.close()  # its frame lets go of the connection: the cycle is broken
