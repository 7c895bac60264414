"""A compressed answer costs the hub what it decodes to, up to ``max_bytes``: never what a bomb expands to.

The decoder is tested on its own (codings, multi-member gzip, truncation, the limits, its peak memory
under tracemalloc), then through a hub serving a real source on 127.0.0.1 whose answer is 10 GiB of
zeros gzipped (about 10 MB, made lazily), once and eight times at once, with the growth of this
process's peak RSS (VmHWM, reset through /proc/self/clear_refs) as the measure.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import random
import re
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from nrhub.resolvers.sources.decoding import MAX_RATIO, RATIO_FLOOR, STEP, BodyDecoder
from nrhub.resolvers.sources.failures import SourceMalformed, SourceTooLarge
from tests.federation.conftest import block, gql, sources_toml
from tests.federation.upstreams import ARRIVALS, serve, stop

MIB = 1024 * 1024
BOMB_MIB = 10 * 1024  # 10 GiB of zeros
MAX_BYTES = 1_000_000  # the sources' max_bytes in tests/federation/conftest.py
GROWTH_LIMIT = 40 * MIB  # before the fix: about 130 MB for one bomb


@cache
def bomb_parts() -> tuple[bytes, bytes]:
    """A gzip header with the first MiB of zeros, and the deflate bytes of each further MiB.

    With a full flush after every MiB the compressor starts afresh, so every further MiB compresses to
    the same bytes (about 1 KB): a bomb of any size is the head, that piece repeated, and a trailer.
    """
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert piece == compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head, piece


def gzip_bomb(mib: int, pieces_per_chunk: int = 64) -> Iterator[bytes]:
    """``mib`` MiB of zeros gzipped, in chunks of about 64 KB (64 MiB each once decoded).

    The first chunk is as large as the others: one network read of it is what httpx inflated at once.
    """
    head, piece = bomb_parts()
    for start in range(0, mib, pieces_per_chunk):
        pieces = min(pieces_per_chunk, mib - start)
        yield head + piece * (pieces - 1) if start == 0 else piece * pieces
    zeros, crc = bytes(MIB), 0
    for _ in range(mib):  # only a bomb read to its end needs its CRC
        crc = zlib.crc32(zeros, crc)
    yield b"\x03\x00" + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)  # the final empty block, the trailer


def decode(encoding: str, raw: bytes, max_bytes: int = MAX_BYTES, piece: int = 0) -> bytes:
    """``raw`` decoded, fed in slices of ``piece`` bytes (0: at once)."""
    decoder = BodyDecoder(encoding, max_bytes)
    for start in range(0, len(raw), piece or max(len(raw), 1)):
        decoder.feed(raw[start : start + (piece or len(raw))])
    return decoder.finish()


# The decoder on its own.


def test_the_bomb_is_a_valid_gzip_of_zeros():
    assert gzip.decompress(b"".join(gzip_bomb(3))) == bytes(3 * MIB)


@pytest.mark.parametrize("encoding", ["", "identity", "Identity, "])
def test_an_answer_without_a_coding_is_taken_as_it_is(encoding):
    assert decode(encoding, b'{"data": []}', piece=5) == b'{"data": []}'
    assert decode(encoding, b"") == b""


@pytest.mark.parametrize("piece", [0, 1, 7, 4096])
def test_a_multi_member_gzip_answer_is_every_member_in_turn(piece):
    first, second = b'{"data": [{"province": "79", ', b'"arrivals": 512345}]}'
    raw = gzip.compress(first) + gzip.compress(second) + gzip.compress(b"")
    assert decode("gzip", raw, piece=piece) == first + second
    assert decode("x-gzip", raw, piece=piece) == first + second


@pytest.mark.parametrize("piece", [0, 1, 3])
def test_deflate_is_a_zlib_stream_or_raw_deflate(piece):
    body = json.dumps({"data": [{"unit": str(n), "value": n * 7} for n in range(2000)]}).encode()
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    for raw in (zlib.compress(body), raw_deflate.compress(body) + raw_deflate.flush()):
        assert decode("deflate", raw, piece=piece) == body


def test_a_long_run_is_drained_step_by_step():
    # One back-reference chain longer than a step: output stays pending in zlib after all input is taken.
    body = bytes(5 * STEP + 123)
    assert decode("deflate", zlib.compress(body), max_bytes=10 * STEP) == body
    assert decode("gzip", gzip.compress(body), max_bytes=10 * STEP, piece=10) == body


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("gzip", gzip.compress(b'{"data": []}' * 100)[:-5]),  # the trailer cut
        ("gzip", gzip.compress(b'{"data": []}' * 100)[:30]),  # cut inside the deflate data
        ("gzip", b""),
        ("deflate", zlib.compress(b'{"data": []}' * 100)[:-3]),
        ("deflate", b"x"),
    ],
    ids=["gzip-trailer", "gzip-data", "gzip-empty", "deflate-data", "deflate-one-byte"],
)
def test_a_compressed_answer_cut_short_is_malformed(encoding, raw):
    with pytest.raises(SourceMalformed, match="ends early"):
        decode(encoding, raw, piece=4)


@pytest.mark.parametrize(
    ("encoding", "raw", "words"),
    [
        ("gzip", b"this is not gzip at all", "does not decode"),
        ("gzip", gzip.compress(b"{}") + b"trailing garbage", "does not decode"),
        ("deflate", zlib.compress(b"{}") + b"more", "after the end"),
        ("br", b"{}", "'br' was not asked for"),
        ("zstd", b"{}", "'zstd' was not asked for"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}")), "stacked"),
    ],
)
def test_what_does_not_decode_is_malformed(encoding, raw, words):
    with pytest.raises(SourceMalformed, match=words):
        decode(encoding, raw)


# Beside the decoded pieces: the step being inflated (zlib's output blocks and the bytes made of them),
# the unconsumed input zlib hands back after each step (old and new), and zlib's own window and state.
SLACK = 8 * STEP


def peak_while_feeding(decoder: BodyDecoder, chunks: Iterator[bytes]) -> tuple[SourceTooLarge, int]:
    """The refusal, and the peak of Python allocations while the chunks were fed (tracemalloc)."""
    tracemalloc.start()
    try:
        with pytest.raises(SourceTooLarge) as refused:
            for chunk in chunks:
                decoder.feed(chunk)
        return refused.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_bomb_is_refused_past_max_bytes_holding_max_bytes_and_a_few_steps():
    chunks = list(gzip_bomb(256))  # 256 MiB of zeros in 64 MiB chunks
    refusal, peak = peak_while_feeding(BodyDecoder("gzip", MAX_BYTES), iter(chunks))
    assert f"more than {MAX_BYTES} bytes once decoded" in refusal.detail
    assert peak < MAX_BYTES + SLACK, peak


def test_a_bomb_is_refused_by_its_ratio_whatever_max_bytes():
    chunks = list(gzip_bomb(256))
    refusal, peak = peak_while_feeding(BodyDecoder("gzip", 500 * MIB), iter(chunks))
    assert f"more than {MAX_RATIO} to 1" in refusal.detail
    assert peak < RATIO_FLOOR + SLACK, peak


def test_a_large_ordinary_answer_passes_the_ratio():
    rng = random.Random(18)
    rows = [
        {
            "province": f"{rng.randint(1, 96):02}",
            "month": f"2026-M{rng.randint(1, 12):02}",
            "arrivals": rng.randint(0, 10**6),
        }
        for _ in range(60_000)
    ]
    body = json.dumps({"data": rows}).encode()
    assert len(body) > 3 * RATIO_FLOOR
    assert decode("gzip", gzip.compress(body), max_bytes=10 * MIB, piece=16_384) == body


def test_the_raw_bytes_count_against_max_bytes_too():
    # Empty gzip members decode to nothing: without this count they could stream in for ever.
    with pytest.raises(SourceTooLarge, match="bytes received"):
        decode("gzip", gzip.compress(b"") * 100_000, piece=STEP)
    with pytest.raises(SourceTooLarge, match="bytes received"):
        decode("", b"x" * (MAX_BYTES + 1), piece=STEP)


# Through a hub, from a real source.


@dataclass
class CompressingApi:
    """The ministry API stand-in, answering compressed: ``gzip``, ``gzip-members`` (two), ``br`` or ``bomb``."""

    mode: str = "gzip"
    url: str = ""
    calls: int = 0
    accept_encoding: list[str | None] = field(default_factory=list)
    bombs_finished: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/{indicator}", self.endpoint)])

    async def endpoint(self, request: Request) -> Response:
        self.calls += 1
        self.accept_encoding.append(request.headers.get("accept-encoding"))
        units = request.query_params["units"].split(",")
        periods = request.query_params["periods"].split(",")
        if self.mode == "bomb":
            return StreamingResponse(self._bomb(), media_type="application/json", headers={"content-encoding": "gzip"})
        rows = [
            {"province": u, "month": p, "arrivals": ARRIVALS[(u, p)]}
            for u in units
            for p in periods
            if (u, p) in ARRIVALS
        ]
        body = json.dumps({"data": rows}).encode()
        if self.mode == "br":
            return Response(body, media_type="application/json", headers={"content-encoding": "br"})
        half = len(body) // 2 if self.mode == "gzip-members" else len(body)
        raw = gzip.compress(body[:half]) + (gzip.compress(body[half:]) if half < len(body) else b"")
        return Response(raw, media_type="application/json", headers={"content-encoding": "gzip"})

    async def _bomb(self) -> AsyncIterator[bytes]:
        for chunk in gzip_bomb(BOMB_MIB):
            yield chunk
            await asyncio.sleep(0)  # lets the server notice that the hub hung up
        self.bombs_finished += 1


@pytest.fixture
async def compressing(arrivals) -> AsyncIterator[CompressingApi]:
    api = CompressingApi()
    server, task, api.url = await serve(api.app())
    arrivals.url = api.url  # the tourism source of sources_toml now points here
    yield api
    await stop(server, task)


TABLE = '{ table(indicators: ["POP_MONTHLY", "INTL_VISITORS", "RETAIL"], units: ["79"], period: "2026-M10") { rows } }'
# Eight calls may be in flight at once, and eight refusals must not open the circuit.
POLICY = {"max_concurrency": 8, "breaker_failures": 100, "retries": 0}


def _status_kb(field_name: str) -> int:
    match = re.search(rf"^{field_name}:\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def reset_peak_rss() -> int:
    """Reset this process's peak RSS to its current RSS (Linux 4.0+: ``5`` to clear_refs); the RSS."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as exc:
        pytest.skip(f"the peak RSS cannot be reset here: {exc}")
    return _status_kb("VmRSS")


async def ask_through_the_hub(
    start_hub, population, arrivals, stats, compressing, requests: int
) -> tuple[str, list[dict]]:
    """A hub whose tourism source answers well once (the warm-up), then ``requests`` bombs at once."""
    hub = await start_hub(sources_toml(population, arrivals, stats, tourism=POLICY))
    warm = await gql(hub, TABLE)  # every code path once, and the connection to the source open
    assert "errors" not in warm, warm
    assert block(warm["data"]["table"]["rows"])[0]["values"][:2] == [Decimal("9880001.5"), 512345]
    compressing.mode = "bomb"
    started = time.monotonic()
    bodies = await asyncio.wait_for(asyncio.gather(*(gql(hub, TABLE) for _ in range(requests))), 30)
    assert time.monotonic() - started < 5.0  # the request's deadline (execution_timeout)
    return hub, bodies


@pytest.mark.parametrize("requests", [1, 8])
async def test_a_gzip_bomb_costs_the_hub_little_memory_and_leaves_a_partial_result(
    start_hub, population, arrivals, stats, compressing, requests
):
    bomb_parts()  # made and kept before the baseline: the source's memory is not the hub's
    baseline = reset_peak_rss()
    hub, bodies = await ask_through_the_hub(start_hub, population, arrivals, stats, compressing, requests)
    growth = _status_kb("VmHWM") - baseline
    assert growth < GROWTH_LIMIT, f"peak RSS grew by {growth / MIB:.0f} MiB"
    for body in bodies:
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE" and "tourism" in error["message"]
        values = block(body["data"]["table"]["rows"])[0]["values"]
        assert values[0] == Decimal("9880001.5") and values[1] is None and values[2] is not None
    assert compressing.calls == 1 + requests  # refused, never asked again
    assert compressing.bombs_finished == 0  # the hub hung up
    sources = await gql(hub, "{ sources { name lastErrorKind } }")
    assert {"name": "tourism", "lastErrorKind": "TOO_LARGE"} in sources["data"]["sources"]


async def test_a_compressed_answer_is_read_and_an_unasked_coding_refused(
    start_hub, population, arrivals, stats, compressing
):
    hub = await start_hub(sources_toml(population, arrivals, stats, tourism=POLICY))
    for mode in ("gzip", "gzip-members"):
        compressing.mode = mode
        body = await gql(hub, TABLE)
        assert "errors" not in body, (mode, body)
        assert block(body["data"]["table"]["rows"])[0]["values"][1] == 512345
    assert compressing.accept_encoding == ["gzip, deflate"] * 2  # only the codings the hub decodes
    compressing.mode = "br"
    body = await gql(hub, TABLE)
    assert body["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    sources = await gql(hub, "{ sources { name lastErrorKind } }")
    assert {"name": "tourism", "lastErrorKind": "MALFORMED"} in sources["data"]["sources"]
