"""The soak's writers: reporters open, fill and submit reports, the receiving agency accepts or returns
them, reporters correct accepted ones; every write the hub acknowledged is written down (bench/soak.py).

A report slot is one province's monthly report for one period; each writer owns some slots and takes
them one after another through the workflow, over and over: open a draft, save its seven cells,
submit, review (accept, or now and then return, which opens the next version as a draft); once a
slot has an accepted version, correct one or two of its cells and review that. A write is
*acknowledged* when the hub answered 200 with the mutation's data and no error. A step that was not
acknowledged (the database away, the connection cut) is sent again with the same idempotency key,
as a client should, until it is or its patience runs out; then the slot is retired, and what that
step would have done is allowed too when the ledger is checked (bench/soak_verify.py).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from bench.soak_http import Client, Tally, Tokens, graphql

MONTHLY = "BC_KTXH_THANG"
CELLS = ["RETAIL", "BUDGET_REV", "BUDGET_EXP", "NEW_ENT", "TRAFFIC_DEATHS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"]
# Months since the 34 provinces came into force (1 July 2025), up to October 2026.
PERIODS = [f"{y}-M{m:02d}" for y in (2025, 2026) for m in range(1, 13)][6:22]
STEP_PATIENCE = 120.0  # seconds a step is sent again; far longer than a restart takes
DRAIN_SECONDS = 90.0  # after the run, how long a step in flight may still take

OPEN = """mutation($r: String!, $p: Period!, $k: String!) {
  openDraft(regime: $r, period: $p, idempotencyKey: $k) { submissionId status }
}"""
SAVE = """mutation($s: Int!, $v: [CellInput!]!, $k: String!) {
  saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { indicator message severity } }
}"""
SUBMIT = """mutation($s: Int!, $k: String!) {
  submitReport(submissionId: $s, idempotencyKey: $k) { submissionId status }
}"""
REVIEW = """mutation($s: Int!, $d: ReviewDecision!, $k: String!, $why: String) {
  reviewReport(submissionId: $s, decision: $d, idempotencyKey: $k, reason: $why) { submissionId status }
}"""
CORRECT = """mutation($s: Int!, $c: [CellInput!]!, $k: String!) {
  correctValue(submissionId: $s, cells: $c, reason: "soak: revised figures", idempotencyKey: $k) {
    submissionId status
  }
}"""

Values = dict[str, Decimal]


@dataclass
class Slot:
    """One province's monthly report for one period, and what the hub acknowledged of it."""

    client: Client
    unit: str
    period: str
    accepted: int | None = None  # the last version whose acceptance was acknowledged
    current: Values | None = None  # its cells: what the hub must serve for the slot
    reopen: bool = False  # a version was returned: the next cycle fills the draft that opened
    alternatives: list[Values] = field(default_factory=list)  # other current cells allowed (an unanswered accept)
    retired: str | None = None  # the step that was never acknowledged

    @property
    def agency(self) -> str:
        return self.client.agency


@dataclass
class Expected:
    """What the end of the run must find of one submission."""

    slot: Slot
    statuses: set[str]
    values: Values | None = None  # the cells a save or correction acknowledged


class Ledger:
    """Every acknowledged write: each submission's allowed final statuses and acknowledged cells."""

    def __init__(self) -> None:
        self.submissions: dict[int, Expected] = {}
        self.acknowledged: Counter[str] = Counter()
        self.last_ack = 0.0  # time.monotonic() of the latest acknowledgement

    def ack(self, kind: str) -> None:
        self.acknowledged[kind] += 1
        self.last_ack = time.monotonic()

    def expect(self, submission: int, slot: Slot, *statuses: str, values: Values | None = None) -> Expected:
        entry = self.submissions.setdefault(submission, Expected(slot, set(statuses)))
        entry.statuses = set(statuses)
        if values is not None:
            entry.values = values
        return entry


class Writers:
    """``count`` workers taking their slots through the workflow until ``stop``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tally: Tally,
        tokens: Tokens,
        slots: list[Slot],
        reviewer: Client,
        *,
        count: int,
        pause: float,
        return_share: float,
        seed: int,
    ) -> None:
        self.http, self.tally, self.tokens = http, tally, tokens
        self.slots, self.reviewer = slots, reviewer
        self.count, self.pause, self.return_share = count, pause, return_share
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.stop = asyncio.Event()
        self.drain_until = float("inf")
        self.retired: Counter[str] = Counter()

    async def run(self) -> None:
        await asyncio.gather(*(self._worker(self.slots[i :: self.count]) for i in range(self.count)))

    def finish(self) -> None:
        """Start no new step; a step in flight may still take DRAIN_SECONDS."""
        self.drain_until = time.monotonic() + DRAIN_SECONDS
        self.stop.set()

    async def _worker(self, slots: list[Slot]) -> None:
        try:
            while True:
                active = [s for s in slots if s.retired is None]
                if not active:
                    return
                self.rng.shuffle(active)
                for slot in active:
                    if slot.accepted is None or slot.reopen:
                        await self._fill_and_submit(slot)
                    else:
                        await self._correct(slot)
        except _Stopped:
            return

    async def _step(self, kind: str, client: Client, query: str, field_name: str, **variables: Any) -> Any:
        """Send one write until acknowledged (its data) or refused or out of patience (None).

        Raises _Stopped, sending nothing, once the run is over.
        """
        await asyncio.sleep(self.pause)
        if self.stop.is_set():
            raise _Stopped
        give_up = min(time.monotonic() + STEP_PATIENCE, self.drain_until)
        stale: str | None = None
        while True:
            token = await self.tokens.get(client, stale=stale)
            if token is not None:
                answer = await graphql(self.http, self.tally, kind, token, query, variables)
                result = (answer.data or {}).get(field_name)
                if isinstance(result, dict):
                    self.ledger.ack(kind)
                    return result
                if not answer.transient:
                    return None
                stale = token if answer.token_refused else None
                wait = answer.retry_after
            else:
                wait = 1.0
            if time.monotonic() + wait > min(give_up, self.drain_until):
                return None
            await asyncio.sleep(wait)

    def _retire(self, slot: Slot, step: str) -> None:
        slot.retired = step
        self.retired[step] += 1

    def _values(self) -> Values:
        base = self.rng.randint(100, 90_000)
        return {code: Decimal(base + 10 * i) for i, code in enumerate(CELLS)}  # DOSSIERS_ONLINE < DOSSIERS_TOTAL

    async def _fill_and_submit(self, slot: Slot) -> None:
        opened = await self._step("write:open", slot.client, OPEN, "openDraft", r=MONTHLY, p=slot.period, k=_key())
        if opened is None:
            return self._retire(slot, "open")
        submission = int(opened["submissionId"])
        entry = self.ledger.expect(submission, slot, "DRAFT")
        values = self._values()
        cells = [{"indicator": code, "value": str(value)} for code, value in values.items()]
        saved = await self._step("write:save", slot.client, SAVE, "saveValues", s=submission, v=cells, k=_key())
        if saved is None:
            return self._retire(slot, "save")  # the draft's cells are unknown
        entry.values = values
        if any(p["severity"] == "ERROR" for p in saved["problems"]):
            return self._retire(slot, "save: problems")  # saved, but it may not be submitted
        submitted = await self._step("write:submit", slot.client, SUBMIT, "submitReport", s=submission, k=_key())
        if submitted is None:
            entry.statuses = {"DRAFT", "SUBMITTED"}
            return self._retire(slot, "submit")
        entry.statuses = {"SUBMITTED"}
        await self._review(slot, submission, values)

    async def _correct(self, slot: Slot) -> None:
        assert slot.accepted is not None and slot.current is not None
        changed = self.rng.sample(["RETAIL", "NEW_ENT", "BUDGET_REV"], self.rng.randint(1, 2))
        changes = {code: slot.current[code] + self.rng.randint(1, 50) for code in changed}
        cells = [{"indicator": code, "value": str(value)} for code, value in changes.items()]
        corrected = await self._step(
            "write:correct", slot.client, CORRECT, "correctValue", s=slot.accepted, c=cells, k=_key()
        )
        if corrected is None:
            return self._retire(slot, "correct")
        submission, values = int(corrected["submissionId"]), {**slot.current, **changes}
        self.ledger.expect(submission, slot, "SUBMITTED", values=values)
        await self._review(slot, submission, values)

    async def _review(self, slot: Slot, submission: int, values: Values) -> None:
        accept = self.rng.random() >= self.return_share
        decision, why = ("ACCEPT", None) if accept else ("RETURN", "soak: please check the figures")
        reviewed = await self._step(
            "write:review", self.reviewer, REVIEW, "reviewReport", s=submission, d=decision, k=_key(), why=why
        )
        entry = self.ledger.submissions[submission]
        target = "ACCEPTED" if accept else "RETURNED"
        if reviewed is None:
            # Answered or not, the review may have happened: both outcomes are allowed.
            entry.statuses = {"SUBMITTED", target}
            if accept:
                slot.alternatives.append(values)
                if slot.accepted is not None:
                    self.ledger.submissions[slot.accepted].statuses.add("SUPERSEDED")
            return self._retire(slot, "review")
        if accept:
            if slot.accepted is not None:
                self.ledger.submissions[slot.accepted].statuses = {"SUPERSEDED"}
            entry.statuses = {"ACCEPTED"}
            slot.accepted, slot.current, slot.reopen = submission, values, False
        else:
            entry.statuses = {"RETURNED"}
            slot.reopen = True


class _Stopped(Exception):
    """The run is over: a writer starts no new step."""


def _key() -> str:
    return str(uuid.uuid4())
