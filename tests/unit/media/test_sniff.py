"""Types come from magic bytes, and only the allow-list is recognised."""

from __future__ import annotations

import pytest

from media.model import MediaKind
from media.sniff import sniff


@pytest.mark.parametrize(
    ("head", "content_type", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg", MediaKind.IMAGE),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", MediaKind.IMAGE),
        (b"GIF89a\x01\x00", "image/gif", MediaKind.IMAGE),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp", MediaKind.IMAGE),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic", MediaKind.IMAGE),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4", MediaKind.VIDEO),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime", MediaKind.VIDEO),
        (b"\x00\x00\x00\x18ftyp3gp4\x00\x00\x00\x00", "video/3gpp", MediaKind.VIDEO),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm", MediaKind.VIDEO),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00", "audio/mp4", MediaKind.AUDIO),
        (b"OggS\x00\x02", "audio/ogg", MediaKind.AUDIO),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav", MediaKind.AUDIO),
        (b"ID3\x03\x00", "audio/mpeg", MediaKind.AUDIO),
        (b"\xff\xfb\x90\x00", "audio/mpeg", MediaKind.AUDIO),
        (b"\xff\xf1\x50\x80", "audio/aac", MediaKind.AUDIO),
        (b"#!AMR\n", "audio/amr", MediaKind.AUDIO),
        (b"fLaC\x00\x00\x00\x22", "audio/flac", MediaKind.AUDIO),
    ],
)
def test_allow_listed_types_are_recognised(head: bytes, content_type: str, kind: MediaKind) -> None:
    found = sniff(head)
    assert found is not None
    assert (found.content_type, found.kind) == (content_type, kind)


@pytest.mark.parametrize(
    "head",
    [
        b"\x7fELF\x02\x01\x01\x00",  # a Linux executable
        b"MZ\x90\x00\x03\x00",  # a Windows executable
        b"#!/bin/sh\nrm -rf /",
        b"%PDF-1.7\n",
        b"<svg xmlns='http://www.w3.org/2000/svg'>",
        b"<!DOCTYPE html><script>",
        b"PK\x03\x04",  # a zip (or an APK)
        b"\x00\x00\x00\x18ftypXXXX",  # an unknown ISO brand
        b"RIFF\x24\x00\x00\x00ABCD",
        b"",
    ],
)
def test_anything_else_is_not_media(head: bytes) -> None:
    assert sniff(head) is None
