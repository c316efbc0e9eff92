"""``KeySockets``: the cap on one integration key's open bulk sockets (pure)."""

from __future__ import annotations

from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from gateway.ws.key_sockets import KeySockets


def test_a_key_takes_up_to_its_cap_and_no_more() -> None:
    keys, key = KeySockets(), uuid4()
    assert [keys.take(key, 3) for _ in range(5)] == [True, True, True, False, False]
    assert keys.held(key) == 3


def test_a_socket_given_back_makes_room_for_one() -> None:
    keys, key = KeySockets(), uuid4()
    assert keys.take(key, 2)
    assert keys.take(key, 2)
    assert not keys.take(key, 2)
    keys.give_back(key)
    assert keys.take(key, 2)
    assert not keys.take(key, 2)


def test_each_key_has_its_own_count() -> None:
    keys, flood, other = KeySockets(), uuid4(), uuid4()
    while keys.take(flood, 4):
        pass
    assert keys.take(other, 4)
    assert (keys.held(flood), keys.held(other)) == (4, 1)


def test_a_key_refused_again_and_again_is_told_once_until_it_gives_one_back() -> None:
    keys, key, other = KeySockets(), uuid4(), uuid4()
    assert keys.take(key, 1)
    told = []
    for _ in range(5):
        assert not keys.take(key, 1)
        told.append(keys.first_refusal(key))
    assert told == [True, False, False, False, False]
    assert not keys.take(other, 0)
    assert keys.first_refusal(other)  # each key its own
    keys.give_back(key)
    assert keys.take(key, 1)
    assert not keys.take(key, 1)
    assert keys.first_refusal(key)


def test_a_key_whose_sockets_all_closed_is_not_kept() -> None:
    keys = KeySockets()
    ids = [uuid4() for _ in range(100)]
    for key in ids:
        assert keys.take(key, 1)
    assert len(keys) == 100
    for key in ids:
        keys.give_back(key)
    assert len(keys) == 0
    assert all(keys.held(key) == 0 for key in ids)


@given(
    cap=st.integers(1, 5),
    steps=st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=60),
)
def test_any_opens_and_closes_match_a_count_held_within_the_cap(
    cap: int, steps: list[tuple[int, bool]]
) -> None:
    """Opening takes a socket unless the key holds ``cap``; closing gives back one
    that was taken (a client closes only sockets it holds)."""
    ids = [UUID(int=i + 1) for i in range(3)]
    keys = KeySockets()
    model = dict.fromkeys(ids, 0)
    for which, opens in steps:
        key = ids[which]
        if opens:
            assert keys.take(key, cap) == (model[key] < cap)
            model[key] = min(cap, model[key] + 1)
        elif model[key] > 0:
            keys.give_back(key)
            model[key] -= 1
        assert all(keys.held(k) == model[k] <= cap for k in ids)
    assert len(keys) == sum(1 for k in ids if model[k] > 0)
