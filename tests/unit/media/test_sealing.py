"""The at-rest format: records authenticate, and ranges open only what they cover."""

from __future__ import annotations

import os
import uuid

import pytest

from media import sealing


def test_a_record_opens_only_at_its_place_in_its_object_with_its_key() -> None:
    key, media_id = sealing.new_data_key(), uuid.uuid4()
    record = sealing.seal(key, media_id, 3, b"licence plate AB-123")
    assert b"licence" not in record
    assert sealing.open_record(key, media_id, 3, record) == b"licence plate AB-123"
    with pytest.raises(sealing.SealError):
        sealing.open_record(key, media_id, 4, record)  # moved
    with pytest.raises(sealing.SealError):
        sealing.open_record(key, uuid.uuid4(), 3, record)  # another object
    with pytest.raises(sealing.SealError):
        sealing.open_record(sealing.new_data_key(), media_id, 3, record)
    tampered = record[:20] + bytes([record[20] ^ 1]) + record[21:]
    with pytest.raises(sealing.SealError):
        sealing.open_record(key, media_id, 3, tampered)
    with pytest.raises(sealing.SealError):
        sealing.open_record(key, media_id, 3, record[:10])


def test_sealing_the_same_segment_twice_never_repeats_a_nonce() -> None:
    key, media_id = sealing.new_data_key(), uuid.uuid4()
    first = sealing.seal(key, media_id, 0, b"x" * 100)
    again = sealing.seal(key, media_id, 0, b"x" * 100)
    assert first[: sealing.NONCE_SIZE] != again[: sealing.NONCE_SIZE]


def test_a_wrapped_data_key_opens_with_its_master_key_id_and_media_only() -> None:
    master, data_key, media_id = sealing.master_key("m" * 40), os.urandom(32), uuid.uuid4()
    wrapped = sealing.wrap_key(master, "k1", media_id, data_key)
    assert data_key not in wrapped
    assert sealing.unwrap_key(master, "k1", media_id, wrapped) == data_key
    for args in [
        (sealing.master_key("n" * 40), "k1", media_id),
        (master, "k2", media_id),
        (master, "k1", uuid.uuid4()),
    ]:
        with pytest.raises(sealing.SealError):
            sealing.unwrap_key(*args, wrapped)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 1, (0, 0, 0, 1)),
        (0, 10, (0, 0, 0, 10)),
        (9, 11, (0, 1, 9, 2)),
        (10, 20, (1, 1, 0, 10)),
        (15, 45, (1, 4, 5, 30)),
    ],
)
def test_span_names_the_segments_a_range_covers(
    start: int, end: int, expected: tuple[int, int, int, int]
) -> None:
    found = sealing.span(start, end, segment_size=10)
    assert (found.first, found.last, found.skip, found.take) == expected


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        sealing.span(5, 5)


def test_segmenter_cuts_chunks_into_whole_segments_and_keeps_the_rest() -> None:
    cutter = sealing.Segmenter(4)
    assert cutter.feed(b"ab") == []
    assert cutter.feed(b"cdefghij") == [b"abcd", b"efgh"]
    assert cutter.rest == b"ij"
    assert sealing.Segmenter(4, rest=b"ij").feed(b"kl") == [b"ijkl"]
    assert cutter.finish() == b"ij"
    assert cutter.finish() == b""


def test_sizes() -> None:
    assert sealing.segment_count(0, 10) == 1
    assert sealing.segment_count(10, 10) == 1
    assert sealing.segment_count(11, 10) == 2
    assert sealing.stored_size(11, 10) == 11 + 2 * sealing.OVERHEAD
