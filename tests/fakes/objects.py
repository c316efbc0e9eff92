"""A fake ``media.ports.ObjectStore``: objects in a dict (unit tests of pure logic)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from actors.store_errors import NotFound


class FakeObjectStore:
    """In memory; ``chunk`` is the size of the pieces :meth:`stream` yields."""

    def __init__(self, *, chunk: int = 1000) -> None:
        self.objects: dict[str, bytes] = {}
        self._chunk = chunk

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        data = bytearray()
        async for piece in chunks:
            data += piece
        self.objects[key] = bytes(data)
        return len(data)

    def _get(self, key: str) -> bytes:
        if key not in self.objects:
            raise NotFound(f"objects: no {key!r}")  # as the real stores say it
        return self.objects[key]

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        return self._get(key)[start:end]

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        data = self._get(key)[start:end]
        for i in range(0, len(data), self._chunk):
            yield data[i : i + self._chunk]

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield key
