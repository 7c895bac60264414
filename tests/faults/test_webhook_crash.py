"""A hub killed with SIGKILL while a webhook receiver holds its delivery open, then started again.

The reminders' deliveries come from a transactional outbox (resolvers.reminders), claimed before
they are sent (resolvers.webhook_delivery): the restarted hub sends each interrupted delivery again,
with the same X-Hub-Delivery id and the next attempt number, and records no reminder twice. The
receiver checks every signature with the snippet of docs/reports.md.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import asyncpg
import pytest

from tests.foundation.conftest import NRHUB, free_port, hub_env
from tests.reports.webhook_receiver import LATE, RECEIVER, add_webhook, reminded_regime, serving_receiver

pytestmark = pytest.mark.slow


def start_hub(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = hub_env(
        HUB_DATABASE_URL=url,
        HUB_GRAPHIQL="false",
        HUB_REMINDER_INTERVAL="0.2",
        HUB_REMINDER_LEAD_DAYS="40",  # real time: a monthly deadline (the 5th) is always within 40 days
        HUB_REMINDER_OVERDUE_DAYS="1",
        HUB_WEBHOOK_ALLOW_LOOPBACK="true",
        HUB_WEBHOOK_TIMEOUT="3",  # a claimed delivery is sent again 3 + 5 s after its claim
    )
    with log.open("ab") as out:
        return subprocess.Popen([str(NRHUB), "serve", "--port", str(port)], env=env, stdout=out, stderr=out)


async def deliveries(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, status, attempts FROM webhook_delivery ORDER BY id")


async def test_a_delivery_interrupted_by_sigkill_is_sent_again_after_the_restart_and_nothing_else_twice(
    new_reference_database, tmp_path: Path
) -> None:
    url = await new_reference_database()
    log = tmp_path / "serve.log"
    conn = await asyncpg.connect(url)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with serving_receiver() as receiver:
            await reminded_regime(conn)  # LATE and PROMPT owe every month's report; RECEIVER receives them
            for agency, path in ((LATE, "/late"), (RECEIVER, "/receiver")):
                receiver.secrets[path] = f"whsec_crash_test_secret_of_{agency}_0123456789"
                await add_webhook(conn, agency, receiver.url + path, receiver.secrets[path])
            receiver.hold = True

            processes.append(first := start_hub(url, free_port(), log))
            async with asyncio.timeout(60):
                await receiver.arrived.wait()
            await asyncio.sleep(0.5)  # the rest of the batch arrives, and is held too
            first.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
            held = {r.delivery for r in receiver.received}
            before = await deliveries(conn)
            reminders = await conn.fetchval("SELECT count(*) FROM reminder")
            assert [(d["status"], d["attempts"]) for d in before] == [("PENDING", 1)] * len(before), log.read_text()
            assert held == {d["id"] for d in before}  # every one was in flight when the hub died
            # LATE and PROMPT owe the same reports: a reminder of LATE's goes to /late and /receiver, PROMPT's
            # (PROMPT has no webhook) to /receiver only.
            assert reminders >= 2 and reminders % 2 == 0 and len(before) == reminders * 3 // 2

            receiver.hold = False
            processes.append(second := start_hub(url, free_port(), log))
            async with asyncio.timeout(60):
                while any(d["status"] != "DELIVERED" for d in await deliveries(conn)):
                    assert second.poll() is None, log.read_text()
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # several more scheduler runs: nothing else is sent
            after = await deliveries(conn)
            assert await conn.fetchval("SELECT count(*) FROM reminder") == reminders

        seen: dict[int, list[int]] = {}
        for request in receiver.received:
            seen.setdefault(request.delivery, []).append(request.attempt)
        assert seen == {d["id"]: [1, 2] for d in after}  # each exactly once per attempt, the same id
        assert all(r.signed for r in receiver.received)
        assert [(d["status"], d["attempts"]) for d in after] == [("DELIVERED", 2)] * len(after)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 20) == 0, log.read_text()
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        await conn.close()
