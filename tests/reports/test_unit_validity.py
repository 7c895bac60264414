"""A report for a month before its province existed in its current form is refused plainly, never INTERNAL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.reports.flows import MONTHLY, OPEN, SAVE, cell_values, key


async def test_values_for_a_month_before_the_reform_are_saved_or_refused(gql, token_for, clock) -> None:
    async with asyncio.timeout(30):
        province = await token_for("UBND_01", "reports:submit")
        clock.now = datetime(2025, 1, 10, 2, 0, tzinfo=UTC)
        opened = await gql(province, OPEN, r=MONTHLY, p="2024-M12", k=key())
        if opened.get("errors"):
            assert opened["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            return
        submission = opened["data"]["openDraft"]["submissionId"]
        saved = await gql(province, SAVE, s=submission, v=cell_values(MONTHLY, 100), k=key())
        # Saved (the cells belong to the unit's predecessors' history), or refused as the client's mistake.
        codes = [e["extensions"]["code"] for e in saved.get("errors", [])]
        assert codes in ([], ["BAD_USER_INPUT"]), saved
