"""Which shard hosts an entity: rendezvous (highest random weight) hashing.

Every process computes the same owner from the entity's key and the shard
count alone, with no shared table. When the count changes, only the entities
whose top-scoring shard changed move (about 1/n of them).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SHARD_NAME_PREFIX = "panic-alert-shard-"


def shard_name(index: int) -> str:
    """The Ray actor name of shard ``index``."""
    return f"{SHARD_NAME_PREFIX}{index}"


def _score(shard: int, key: str) -> int:
    digest = hashlib.blake2b(f"{shard}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@functools.lru_cache(maxsize=65536)
def owner(kind: str, entity_id: str, shard_count: int) -> int:
    """The index of the shard that hosts ``(kind, entity_id)``; deterministic.

    Remembered for recent keys: a search asks the same region cells again and again.
    """
    if shard_count < 1:
        raise ValueError(f"shard_count must be >= 1, got {shard_count}")
    if shard_count == 1:
        return 0
    key = f"{kind}:{entity_id}"
    return max(range(shard_count), key=lambda shard: _score(shard, key))


def group_by_shard(shards: Iterable[int]) -> dict[int, list[int]]:
    """The positions of items, grouped by the shard each goes to (``shards[i]``)."""
    per_shard: dict[int, list[int]] = {}
    for position, shard in enumerate(shards):
        per_shard.setdefault(shard, []).append(position)
    return per_shard


def in_item_order(per_shard: Mapping[int, Sequence[int]], answers: Sequence[Any]) -> list[object]:
    """Each item's value (a reply or an ``ActorError``) from the per-shard lists
    of ``(ok, value)`` outcomes answered in ``per_shard``'s order, back in the
    items' order."""
    results: list[object] = [None] * sum(len(p) for p in per_shard.values())
    for positions, outcomes in zip(per_shard.values(), answers, strict=True):
        for position, (_ok, value) in zip(positions, outcomes, strict=True):
            results[position] = value
    return results
