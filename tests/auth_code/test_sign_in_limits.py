"""Password sign-in is limited per account and per address, and a forwarded address is believed only from
a trusted proxy. Each test sends from a loopback address of its own (127.0.0.0/8), so that its counts
are its own."""

from __future__ import annotations

import secrets

from nrhub.auth.authorize import SIGN_IN_FAILURES_PER_ACCOUNT, SIGN_IN_FAILURES_PER_ADDRESS, SIGN_IN_WINDOW_SECONDS
from tests.auth_code.conftest import LABOUR, fresh_window, pkce, redirected, register_person, sign_in

WRONG = "not the password at all"


async def test_wrong_passwords_lock_the_account_for_a_while(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    challenge = pkce()[1]
    await fresh_window(SIGN_IN_WINDOW_SECONDS)
    # The guesses come from ever new addresses: the account's own count stops them.
    for n in range(SIGN_IN_FAILURES_PER_ACCOUNT):
        wrong = await sign_in(oauth_hub, people, challenge, source=f"127.0.1.{n + 1}", password=WRONG)
        assert wrong.status_code == 401, wrong.text
    locked = await sign_in(oauth_hub, people, challenge, source="127.0.1.200")  # the right password
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= SIGN_IN_WINDOW_SECONDS + 1
    assert "Too many failed sign-ins" in locked.text and "location" not in locked.headers


async def test_an_address_is_limited_whatever_forwarded_address_it_claims(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    challenge = pkce()[1]
    await fresh_window(SIGN_IN_WINDOW_SECONDS, margin=20)
    # Many accounts guessed from one address; each request claims another X-Forwarded-For (sign_in).
    for _ in range(SIGN_IN_FAILURES_PER_ADDRESS):
        guess = await sign_in(
            oauth_hub, people, challenge, source="127.0.2.1", username=f"guess{secrets.token_hex(4)}", password=WRONG
        )
        assert guess.status_code == 401, guess.text
    refused = await sign_in(oauth_hub, people, challenge, source="127.0.2.1")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # The person, from their own address, is not locked out by a stranger's guesses.
    assert redirected(await sign_in(oauth_hub, people, challenge, source="127.0.2.2"))["code"]


async def test_a_successful_sign_in_is_not_counted_as_a_failure(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    challenge = pkce()[1]
    await fresh_window(SIGN_IN_WINDOW_SECONDS)
    for _ in range(SIGN_IN_FAILURES_PER_ACCOUNT + 2):
        assert redirected(await sign_in(oauth_hub, people, challenge, source="127.0.3.1"))["code"]
