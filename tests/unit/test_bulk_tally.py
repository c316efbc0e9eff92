"""``panic_alert.bulk_tally``: the gateways' bulk-socket counts in real files of a
temporary directory; the "other gateways" are live processes (this test's
parent, a child started here) or one that exited."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from panic_alert.bulk_tally import MOVE_EVERY_S, BulkTally, forget


@pytest.fixture
def other_pid() -> Iterator[int]:
    """A live process that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_two_gateways_take_bulk_sockets_in_turn(tmp_path: Path, other_pid: int) -> None:
    mine, theirs = BulkTally(tmp_path), BulkTally(tmp_path, pid=other_pid)
    mine.join()
    theirs.join()
    assert sorted(os.listdir(tmp_path)) == sorted([str(os.getpid()), str(other_pid)])
    assert mine.admit()  # 0 against 0
    assert not mine.admit()  # 1 against 0: connect again
    assert mine.count == 1
    assert theirs.admit()
    assert theirs.others() == [1]
    assert mine.admit()  # 1 against 1
    assert not mine.admit()
    assert theirs.admit()
    mine.release()  # 1 against 2 now
    assert not theirs.admit()
    assert mine.admit()
    assert (mine.count, theirs.count) == (2, 2)


def test_before_joining_and_after_leaving_every_socket_is_taken(
    tmp_path: Path, other_pid: int
) -> None:
    mine, theirs = BulkTally(tmp_path), BulkTally(tmp_path, pid=other_pid)
    theirs.join()
    # Still starting: it takes what the kernel hands it, and no one sees it.
    assert mine.admit()
    assert mine.admit()
    assert theirs.others() == []
    mine.join()
    assert theirs.others() == [2]  # the count so far, once it serves
    assert not mine.admit()
    mine.leave()
    mine.leave()  # idempotent
    assert theirs.others() == []
    assert mine.admit()  # stopping: not sent away either
    mine.release()
    assert sorted(os.listdir(tmp_path)) == [str(other_pid)]


def test_a_gateway_that_exited_is_skipped_and_its_count_removed(tmp_path: Path) -> None:
    gone = dead_pid()
    BulkTally(tmp_path, pid=gone).join()  # killed: it never left
    mine = BulkTally(tmp_path)
    mine.join()
    assert mine.admit()
    assert mine.admit()  # 1 against nobody: the dead one's 0 does not count
    assert not (tmp_path / str(gone)).exists()


def test_a_killed_gateway_not_reaped_yet_is_skipped_too(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        BulkTally(tmp_path, pid=proc.pid).join()
        mine = BulkTally(tmp_path)
        mine.join()
        assert mine.admit()
        assert not mine.admit()  # 1 against its 0
        proc.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert mine.admit()  # a zombie (not reaped): gone for the tally
    finally:
        proc.wait()


def test_forget_removes_a_count_once(tmp_path: Path) -> None:
    gone = dead_pid()
    BulkTally(tmp_path, pid=gone).join()
    forget(tmp_path, gone)
    forget(tmp_path, gone)  # already gone: nothing to do
    assert os.listdir(tmp_path) == []


def test_files_that_are_not_whole_counts_are_skipped(tmp_path: Path, other_pid: int) -> None:
    (tmp_path / str(other_pid)).write_bytes(b"\x00\x00\x00")  # torn
    (tmp_path / f".{other_pid}").write_bytes(bytes(8))  # being written
    (tmp_path / "notes").write_text("not a pid")
    mine = BulkTally(tmp_path)
    mine.join()
    assert mine.others() == []
    assert mine.admit()
    assert mine.admit()


def test_an_unreadable_directory_sends_no_socket_away(tmp_path: Path) -> None:
    shared = tmp_path / "bulk-sockets"
    shared.mkdir()
    mine = BulkTally(shared)
    mine.join()
    (shared / str(os.getpid())).unlink()
    shared.rmdir()  # gone under it
    assert mine.others() == []
    assert mine.admit()


def test_a_gateway_two_above_another_sends_a_socket_away_once_in_a_while(
    tmp_path: Path, other_pid: int
) -> None:
    mine, theirs = BulkTally(tmp_path), BulkTally(tmp_path, pid=other_pid)
    for _ in range(3):
        assert mine.admit()  # the other still starting: all three here
    assert not mine.surplus(100.0)  # not joined yet: nobody to send them to
    mine.join()
    theirs.join()
    assert mine.surplus(100.0)  # 3 against 0
    assert not mine.surplus(100.5)  # once per MOVE_EVERY_S
    mine.release()  # the socket sent away closed; its client lands on the other
    assert theirs.admit()
    assert mine.surplus(100.0 + MOVE_EVERY_S) is False  # 2 against 1: even enough
    assert not theirs.surplus(200.0)
    mine.leave()
    assert not mine.surplus(300.0)  # stopping: nothing is moved
