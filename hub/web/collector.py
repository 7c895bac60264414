"""The cyclic collector's settings for a serving process (``nrhub serve``, and the benchmark's anchors)."""

from __future__ import annotations

import gc

# The cyclic collector's full passes scan the whole heap (with 1,000 WebSocket subscribers, 50 to 240
# ms each) and CPython considers one after every 10 middle passes; the hub considers one after every
# 100. A young pass comes after 10,000 net allocations instead of CPython's 700: a request leaves no
# garbage cycles (tests/schema/test_http_and_limits.py pins it), so young passes only ever find the
# objects of requests in flight. At 16 concurrent point lookups CPython's threshold ran one every 18
# requests, 0.1 ms each (5.6 us per request); at 10,000, none (bench/README.md). An earlier try at
# 10,000, while every request still left a cycle behind, gave the point lookup at one client a p99 of
# 3.6x its p50: those passes had all that garbage to free at once.
_YOUNG_ALLOCATIONS_PER_PASS = 10_000
_MIDDLE_PASSES_PER_FULL_PASS = 100


def settle_collector() -> None:
    """Once started: keep start-up objects out of the collector, and make its passes rarer.

    ``gc.freeze()`` moves what start-up allocated (schema, validation rules, pools) out of every
    later pass: on the 60-indicator catalogue query, p99 65 ms before, 19 ms after. The objects an
    event's fan-out holds for its ~40 ms outlive two young passes and reach the old generation, which
    keeps growing and tripping full passes: with 1,000 subscribers, six passes of 47 to 242 ms per
    run set the delivery p99 (260 to 286 ms). With full
    passes considered ten times less often, none came during a run and p99 was 61 to 75 ms
    (bench/subscriptions.py); over longer runs they still come, ten times less often.
    """
    _, gen1, _ = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_YOUNG_ALLOCATIONS_PER_PASS, gen1, _MIDDLE_PASSES_PER_FULL_PASS)
