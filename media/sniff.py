"""What a file is, from its first bytes (never from the client's header).

Pure. Only the allow-listed image, audio and video formats are recognised;
anything else (an executable renamed ``.jpg``, a script, a PDF, SVG or HTML,
which a browser could run) is ``None`` and refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.model import MediaKind

#: Bytes of a file's start that :func:`sniff` needs at most.
HEAD_BYTES = 64


@dataclass(frozen=True, slots=True)
class Sniffed:
    content_type: str
    kind: MediaKind


_IMAGE, _AUDIO, _VIDEO = MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO

#: ISO base media (``ftyp`` box) major brands, by what they hold.
_FTYP_BRANDS: dict[bytes, Sniffed] = {
    **{
        brand: Sniffed("video/mp4", _VIDEO)
        for brand in (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1")
    },
    **{brand: Sniffed("video/mp4", _VIDEO) for brand in (b"dash", b"M4V ", b"MSNV")},
    b"qt  ": Sniffed("video/quicktime", _VIDEO),
    **{brand: Sniffed("video/3gpp", _VIDEO) for brand in (b"3gp4", b"3gp5", b"3gp6", b"3ge6")},
    **{brand: Sniffed("video/3gpp2", _VIDEO) for brand in (b"3g2a", b"3g2b", b"3g2c")},
    **{brand: Sniffed("audio/mp4", _AUDIO) for brand in (b"M4A ", b"M4B ", b"F4A ")},
    **{brand: Sniffed("image/heic", _IMAGE) for brand in (b"heic", b"heix", b"heim", b"heis")},
    **{brand: Sniffed("image/heif", _IMAGE) for brand in (b"mif1", b"msf1", b"heif")},
    b"avif": Sniffed("image/avif", _IMAGE),
}


def _riff(head: bytes) -> Sniffed | None:
    form = head[8:12]
    if form == b"WEBP":
        return Sniffed("image/webp", _IMAGE)
    if form == b"WAVE":
        return Sniffed("audio/wav", _AUDIO)
    if form == b"AVI ":
        return Sniffed("video/x-msvideo", _VIDEO)
    return None


def _ftyp(head: bytes) -> Sniffed | None:
    if head[4:8] != b"ftyp":
        return None
    return _FTYP_BRANDS.get(head[8:12])


def _mpeg_audio(head: bytes) -> Sniffed | None:
    if head.startswith(b"ID3"):
        return Sniffed("audio/mpeg", _AUDIO)
    if len(head) >= 2 and head[0] == 0xFF:
        second = head[1]
        if second & 0xF6 == 0xF0:  # ADTS: sync, layer 00
            return Sniffed("audio/aac", _AUDIO)
        if second & 0xE0 == 0xE0 and second & 0x06:  # MPEG audio frame: sync, layer set
            return Sniffed("audio/mpeg", _AUDIO)
    return None


_PREFIXES: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\xff\xd8\xff", Sniffed("image/jpeg", _IMAGE)),
    (b"\x89PNG\r\n\x1a\n", Sniffed("image/png", _IMAGE)),
    (b"GIF87a", Sniffed("image/gif", _IMAGE)),
    (b"GIF89a", Sniffed("image/gif", _IMAGE)),
    (b"OggS", Sniffed("audio/ogg", _AUDIO)),
    (b"fLaC", Sniffed("audio/flac", _AUDIO)),
    (b"#!AMR", Sniffed("audio/amr", _AUDIO)),
)


def _matroska(head: bytes) -> Sniffed | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    # The EBML header names its DocType near the start: "webm" or "matroska".
    if b"webm" in head:
        return Sniffed("video/webm", _VIDEO)
    if b"matroska" in head:
        return Sniffed("video/x-matroska", _VIDEO)
    return None


def sniff(head: bytes) -> Sniffed | None:
    """The allow-listed type of a file starting with ``head`` (at least the first
    :data:`HEAD_BYTES`, or the whole file if shorter), or None."""
    for prefix, found in _PREFIXES:
        if head.startswith(prefix):
            return found
    if head.startswith(b"RIFF"):
        return _riff(head)
    return _ftyp(head) or _matroska(head) or _mpeg_audio(head)
