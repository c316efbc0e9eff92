"""``AccountSockets``: one account's open ``/ws`` sockets, the newest kept (pure)."""

from __future__ import annotations

from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from gateway.ws.account_sockets import AccountSockets


def test_past_the_cap_the_oldest_socket_is_returned_to_close_never_the_newest() -> None:
    held: AccountSockets[str] = AccountSockets()
    account = uuid4()
    assert [held.opened(account, f"s{n}", 3) for n in range(5)] == [[], [], [], ["s0"], ["s1"]]
    assert held.held(account) == 3
    # The ones returned are no longer counted: closing them changes nothing.
    held.closed(account, "s0")
    assert held.held(account) == 3
    # A socket that closes makes room: the next one closes nothing.
    held.closed(account, "s3")
    assert held.opened(account, "s5", 3) == []
    assert held.opened(account, "s6", 3) == ["s2"]


def test_a_lowered_cap_returns_every_socket_past_it_oldest_first() -> None:
    held: AccountSockets[int] = AccountSockets()
    account = uuid4()
    for n in range(4):
        held.opened(account, n, 4)
    assert held.opened(account, 4, 2) == [0, 1, 2]
    assert held.held(account) == 2


def test_each_account_has_its_own_sockets() -> None:
    held: AccountSockets[int] = AccountSockets()
    flood, other = uuid4(), uuid4()
    assert held.opened(other, -1, 2) == []
    for n in range(100):
        held.opened(flood, n, 2)
    assert (held.held(flood), held.held(other)) == (2, 1)
    assert held.opened(other, -2, 2) == []  # the flood closed none of the other's


def test_an_account_over_its_cap_again_and_again_is_told_once_until_it_is_under() -> None:
    held: AccountSockets[int] = AccountSockets()
    account, other = uuid4(), uuid4()
    told = []
    for n in range(6):
        if held.opened(account, n, 1):
            told.append(held.first_over(account))
    assert told == [True, False, False, False, False]
    assert held.opened(other, 0, 1) == []
    assert held.opened(other, 1, 1) == [0]
    assert held.first_over(other)  # each account its own
    held.closed(account, 5)  # under its cap: told again next time
    held.opened(account, 6, 1)
    assert held.opened(account, 7, 1) == [6]
    assert held.first_over(account)


def test_an_account_whose_sockets_all_closed_is_not_kept() -> None:
    held: AccountSockets[int] = AccountSockets()
    ids = [uuid4() for _ in range(100)]
    for n, account in enumerate(ids):
        held.opened(account, n, 1)
    assert len(held) == 100
    for n, account in enumerate(ids):
        held.closed(account, n)
    assert len(held) == 0
    assert all(held.held(account) == 0 for account in ids)


@given(
    cap=st.integers(1, 4),
    steps=st.lists(st.tuples(st.integers(0, 2), st.integers(-1, 8)), max_size=60),
)
def test_any_opens_and_closes_keep_each_accounts_newest_within_the_cap(
    cap: int, steps: list[tuple[int, int]]
) -> None:
    """A model: each account's open sockets in opening order; an open past the cap
    closes the oldest. ``-1`` opens a new socket; ``n`` closes the account's n-th
    open one (if it has that many), as a client or the heartbeat would."""
    ids = [UUID(int=i + 1) for i in range(3)]
    held: AccountSockets[int] = AccountSockets()
    model: dict[UUID, list[int]] = {account: [] for account in ids}
    made = 0
    for which, step in steps:
        account = ids[which]
        sockets = model[account]
        if step < 0:
            made += 1
            sockets.append(made)
            over = sockets[: max(0, len(sockets) - cap)]
            del sockets[: len(over)]
            assert held.opened(account, made, cap) == over
        elif step < len(sockets):
            held.closed(account, sockets.pop(step))
        assert all(held.held(a) == len(model[a]) <= cap for a in ids)
    assert len(held) == sum(1 for a in ids if model[a])
