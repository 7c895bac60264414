"""A source's answer decoded as it streams in, so that a small compressed body cannot become a large one.

httpx decodes each network read whole: 64 KiB of a gzip bomb become 64 MB of zeros before any limit
can look at them, and eight such answers at once cost a gigabyte. Here the hub reads the raw bytes
and inflates them itself, at most ``STEP`` bytes at a time, checking after every step:

- more than ``max_bytes`` received, or more than ``max_bytes`` once decoded: ``SourceTooLarge``;
- more than ``MAX_RATIO`` decoded bytes per compressed byte inflated so far, once past ``RATIO_FLOOR``
  decoded bytes: ``SourceTooLarge`` as well. Figures in JSON compress about 10 to 1; a bomb does
  1000 to 1, so it is stopped after ``RATIO_FLOOR`` bytes whatever a source's ``max_bytes``;
- a coding other than those in ``ACCEPT_ENCODING``, two codings stacked, bytes that do not decode,
  or compressed data that stops before its format says it ends: ``SourceMalformed``.

So an answer holds at most ``max_bytes`` of decoded data, plus a few buffers of one step while a
step is inflated. The hub asks only for the codings it decodes (``ACCEPT_ENCODING``): brotli or
zstd, decoded by httpx, would be decoded a whole network read at a time again.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

from nrhub.resolvers.sources.failures import SourceMalformed, SourceTooLarge

ACCEPT_ENCODING = "gzip, deflate"
STEP = 64 * 1024  # bytes inflated at most before the limits are checked again
MAX_RATIO = 100  # decoded bytes per byte received
RATIO_FLOOR = 1024 * 1024  # decoded bytes below which the ratio is not checked (small answers compress well)


class _Inflater(Protocol):
    complete: bool  # the compressed data has ended where its format says it ends
    pending: int  # bytes received and not inflated yet

    def inflate(self, data: bytes) -> Iterator[bytes]: ...


class _Steps:
    """Inflating through zlib in pieces of at most STEP bytes, keeping count of the input not yet used."""

    pending = 0

    def _steps(self, stream: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        """Inflate ``data`` through ``stream`` up to the stream's end; whatever follows is left in unused_data.

        A piece of exactly STEP bytes may leave output pending inside zlib even when all input was
        taken (a long back-reference), so the stream is asked again until it gives less than a step.
        """
        while True:
            piece = stream.decompress(data, STEP)
            data = stream.unconsumed_tail
            self.pending = len(data) + len(stream.unused_data)
            yield piece
            if stream.eof or (not data and len(piece) < STEP):
                return


class _Gzip(_Steps):
    """Content-Encoding ``gzip`` (RFC 9110 section 8.4.1.3): gzip members (RFC 1952), one after
    another; a multi-member body decodes to the concatenation of its members (RFC 1952 section 2.2)."""

    def __init__(self) -> None:
        self._member: zlib._Decompress | None = None
        self.complete = False

    def inflate(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._member is None or self._member.eof:
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            yield from self._steps(self._member, data)
            self.complete = self._member.eof
            data = self._member.unused_data if self._member.eof else b""


class _Deflate(_Steps):
    """Content-Encoding ``deflate`` (RFC 9110 section 8.4.1.2): a zlib stream (RFC 1950). Some servers
    send raw deflate (RFC 1951) under that name; the first two bytes tell which, as browsers do."""

    def __init__(self) -> None:
        self._stream: zlib._Decompress | None = None
        self._head = b""
        self.complete = False

    def inflate(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._stream is None:
            self._head += data
            self.pending = len(self._head)
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._stream = zlib.decompressobj(zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS)
        if self._stream.eof:
            raise SourceMalformed("data after the end of the deflate stream")
        yield from self._steps(self._stream, data)
        self.complete = self._stream.eof
        if self._stream.unused_data:
            raise SourceMalformed("data after the end of the deflate stream")


def _is_zlib_header(head: bytes) -> bool:
    # RFC 1950 section 2.2: compression method 8 (deflate), and CMF * 256 + FLG a multiple of 31.
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


# x-gzip: a recipient should take it as gzip (RFC 9110 section 8.4.1.3).
_INFLATERS: dict[str, Callable[[], _Inflater]] = {"gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate}


def _inflater_for(content_encoding: str) -> _Inflater | None:
    """The inflater of the one coding named, None for none (or ``identity``)."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise SourceMalformed(f"stacked content codings are not accepted: {content_encoding!r}")
    if codings[0] not in _INFLATERS:
        raise SourceMalformed(f"content coding {codings[0]!r} was not asked for (only {ACCEPT_ENCODING})")
    return _INFLATERS[codings[0]]()


class BodyDecoder:
    """The decoded body of one answer, fed its raw bytes as they arrive; refuses as soon as a limit is passed."""

    def __init__(self, content_encoding: str, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.received = 0
        self.decoded = 0
        # Pieces rather than one bytearray: a growing bytearray reserves up to an eighth more than it holds.
        self._pieces: list[bytes] = []
        self._inflater = _inflater_for(content_encoding)

    def feed(self, raw: bytes) -> None:
        """Take the next raw bytes; SourceTooLarge or SourceMalformed as soon as they break a limit."""
        self.received += len(raw)
        if self.received > self.max_bytes:
            raise SourceTooLarge(f"more than {self.max_bytes} bytes received")
        if self._inflater is None:
            self._take(raw, self.received)
            return
        try:
            for piece in self._inflater.inflate(raw):
                self._take(piece, self.received - self._inflater.pending)
        except zlib.error as exc:
            raise SourceMalformed(f"the compressed answer does not decode: {exc}") from None

    def finish(self) -> bytes:
        """The whole decoded body, once the last raw bytes were fed; SourceMalformed if it was cut short."""
        if self._inflater is not None and not self._inflater.complete:
            raise SourceMalformed(f"the compressed answer ends early, after {self.received} bytes")
        body = b"".join(self._pieces)
        self._pieces.clear()
        return body

    def _take(self, piece: bytes, consumed: int) -> None:
        """Keep ``piece``, decoded from the first ``consumed`` bytes received, unless it breaks a limit."""
        decoded = self.decoded + len(piece)
        if decoded > self.max_bytes:
            raise SourceTooLarge(f"more than {self.max_bytes} bytes once decoded")
        if decoded > RATIO_FLOOR and decoded > MAX_RATIO * consumed:
            raise SourceTooLarge(f"{decoded} bytes decoded from {consumed}: more than {MAX_RATIO} to 1")
        self.decoded = decoded
        if piece:
            self._pieces.append(piece)
