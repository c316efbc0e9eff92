"""Which shard hosts an entity: rendezvous (highest random weight) hashing.

Every process computes the same owner from the entity's key and the shard
count alone, with no shared table. When the count changes, only the entities
whose top-scoring shard changed move (about 1/n of them).
"""

from __future__ import annotations

import hashlib

SHARD_NAME_PREFIX = "panic-alert-shard-"


def shard_name(index: int) -> str:
    """The Ray actor name of shard ``index``."""
    return f"{SHARD_NAME_PREFIX}{index}"


def _score(shard: int, key: str) -> int:
    digest = hashlib.blake2b(f"{shard}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(kind: str, entity_id: str, shard_count: int) -> int:
    """The index of the shard that hosts ``(kind, entity_id)``; deterministic."""
    if shard_count < 1:
        raise ValueError(f"shard_count must be >= 1, got {shard_count}")
    key = f"{kind}:{entity_id}"
    return max(range(shard_count), key=lambda shard: _score(shard, key))
