"""The bulk-feed sockets each gateway process holds, in a directory they share.

With several gateway processes on one port (``panic_alert.gateways``), each
keeps its count of open ``/ws/locations`` sockets in a file of the directory
the parent made (``TALLY_DIR_ENV``): named by its pid, 8 bytes, rewritten in
place whenever a socket is taken or closed. Before it takes one more it reads
the others' files, and refuses the socket when another holds fewer
(:func:`~panic_alert.gateways.refuses_bulk_socket`); and every
``MOVE_EVERY_S`` at most, as its sockets' frames come, it checks whether it
holds two or more than another, and if so sends one socket away
(:meth:`BulkTally.surplus`).

A process counts for the others only while it serves: it writes its file once
it listens (:meth:`BulkTally.join`) and removes it as it starts to stop
(:meth:`BulkTally.leave`), so a socket is never sent away towards a gateway
that cannot take it. A file whose process is gone (killed, so it could not
remove it) is skipped and removed by whoever reads it; the parent removes a
child's as it sees the child exit (:func:`forget`). Bulk sockets open seldom,
so the few system calls a decision takes are made on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from pathlib import Path

from panic_alert.gateways import moves_bulk_socket, refuses_bulk_socket

log = logging.getLogger(__name__)

_COUNT = struct.Struct("<q")

#: A gateway sends at most one of its open bulk sockets away this often, so the
#: moved client's new socket is counted before the next is considered.
MOVE_EVERY_S = 2.0


class BulkTally:
    """This process's count of bulk sockets, shared through ``directory``
    (``gateway.ws.bulk.BulkSpread``)."""

    def __init__(self, directory: str | Path, pid: int | None = None) -> None:
        self._directory = Path(directory)
        self._pid = os.getpid() if pid is None else pid
        self._fd: int | None = None
        self._count = 0
        self._next_move = 0.0

    @property
    def count(self) -> int:
        """The bulk sockets this process holds."""
        return self._count

    def join(self) -> None:
        """Count for the other gateways (this process listens now): its file is
        written under a temporary name and renamed, so it is never read half made."""
        if self._fd is not None:
            return
        staging = self._directory / f".{self._pid}"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.pwrite(fd, _COUNT.pack(self._count), 0)
            os.rename(staging, self._directory / str(self._pid))
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def leave(self) -> None:
        """No longer count for the others (this process stops). Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)
        forget(self._directory, self._pid)

    def admit(self) -> bool:
        """Count one more bulk socket, or False (not counted) when another
        gateway that serves holds fewer. Before :meth:`join` and after
        :meth:`leave` every socket is taken."""
        if self._fd is not None and refuses_bulk_socket(self._count, self.others()):
            return False
        self._count += 1
        self._write()
        return True

    def surplus(self, now: float) -> bool:
        """Whether one of this process's open bulk sockets should go to another
        gateway, which holds two or more fewer (:func:`moves_bulk_socket`). The
        others are read at most once per ``MOVE_EVERY_S`` (``now``: monotonic
        seconds); False in between, and before :meth:`join` or after :meth:`leave`."""
        if self._fd is None or now < self._next_move:
            return False
        self._next_move = now + MOVE_EVERY_S
        return moves_bulk_socket(self._count, self.others())

    def release(self) -> None:
        """One bulk socket this process counted closed."""
        self._count = max(0, self._count - 1)
        self._write()

    def others(self) -> list[int]:
        """The counts of the other gateway processes that serve."""
        counts: list[int] = []
        try:
            names = os.listdir(self._directory)
        except OSError as exc:
            log.warning("bulk tally: cannot read %s (%s)", self._directory, exc)
            return counts
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            if pid == self._pid:
                continue
            if not _alive(pid):
                forget(self._directory, pid)
                continue
            count = _read(self._directory / name)
            if count is not None:
                counts.append(count)
        return counts

    def _write(self) -> None:
        if self._fd is not None:
            os.pwrite(self._fd, _COUNT.pack(self._count), 0)


def forget(directory: str | Path, pid: int) -> None:
    """Remove the count of gateway process ``pid`` (it exited)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(directory) / str(pid)).unlink()


def _alive(pid: int) -> bool:
    """``pid`` runs: it exists and is not a zombie (a killed child the parent
    has not reaped yet, for up to its supervisor's poll, still has a pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's: alive
            return True
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _read(path: Path) -> int | None:
    """A count file's number; None when it is gone or not whole."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) != _COUNT.size:
        return None
    (count,) = _COUNT.unpack(data)
    return int(count)
