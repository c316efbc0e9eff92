"""Renditions of an original: a thin shell around Pillow and Debian's ffmpeg.

Works on plain files in a scratch directory the caller owns: the caller
decrypts the original into it, calls :func:`render`, then seals and stores
each :class:`Rendered` file and discards the directory. Nothing here knows
about encryption, storage, Ray or Kafka.

Guarantees:

- No rendition carries the original's metadata: no EXIF (so no GPS), XMP,
  comments or ICC profile in images (colours are converted to sRGB first), no
  container or stream tags (``-map_metadata -1``, so no QuickTime location) in
  video and audio, and only the first video and audio streams are kept (a
  data stream may be a GPS track; an audio file's cover art is dropped).
- Images are decoded only as :data:`IMAGE_FORMATS`, and only up to
  ``PIL.Image.MAX_IMAGE_PIXELS`` pixels; a larger one (a decompression bomb)
  is a :class:`RenderError` before any pixel is decoded.
- ffmpeg reads only local files (``-protocol_whitelist file``) through the
  demuxers of :data:`DEMUXERS`, so a playlist or a concat script disguised
  as a video cannot pull in other files or URLs.
- Each call is bounded: ``timeout_s`` for the whole call (ffmpeg is killed
  when it runs out) and ``threads`` for ffmpeg's decoders, filters and
  encoders.
- Deterministic in what it produces (same kinds, names and types for the
  same input); safe to retry into a fresh or the same ``out_dir`` (outputs
  are overwritten). After a :class:`RenderError` the files in ``out_dir``
  may be partial: the caller discards them.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageOps

from media.model import MediaKind, RenditionKind

#: Longest side of an image's thumbnail, in pixels.
THUMBNAIL_SIDE = 320
#: Greatest height of a video's poster.
POSTER_HEIGHT = 720
#: Where in a video the poster is taken (the first frame if it is shorter).
POSTER_AT_S = 1.0
#: The MP4 rendition's bound: its shorter side at most 1080 (1080p, either way up).
VIDEO_SHORT_SIDE = 1080
OPUS_BITRATE = "48k"
#: ffmpeg's stderr lines kept in a :class:`RenderError`.
STDERR_LINES = 12

#: The formats Pillow may decode an original as (what cameras and phones
#: save; JPEG includes a camera's multi-picture MPO). Nothing else is tried:
#: no EPS handed to Ghostscript, no rarely used decoder.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")

#: The demuxers ffmpeg may open an original with (the containers phones and
#: cameras record in); anything else, a playlist or concat script included,
#: is refused before it is read.
DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "asf",
    "mpegts",
    "mpeg",
    "ogg",
    "wav",
    "w64",
    "aiff",
    "caf",
    "mp3",
    "aac",
    "flac",
    "amr",
    "amrnb",
    "amrwb",
)

#: The files :func:`render` may write into its ``out_dir``.
OUTPUT_NAMES = frozenset(
    {"thumbnail.jpg", "shared.jpg", "shared.png", "poster.jpg", "video.mp4", "audio.opus"}
)

_JPEG = "image/jpeg"
_PNG = "image/png"
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class RenderError(Exception):
    """A rendition could not be made: an unreadable or refused original, a
    missing ffmpeg, or a run out of time.

    ``retriable`` is True only for a timeout (a less busy node may finish);
    the same bytes fail the same way otherwise.
    """

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True, slots=True)
class Rendered:
    """One file :func:`render` wrote, and what it is."""

    kind: RenditionKind
    path: Path
    content_type: str


def render(
    kind: MediaKind,
    source: Path,
    out_dir: Path,
    *,
    timeout_s: float = 600.0,
    threads: int = 1,
) -> list[Rendered]:
    """Every rendition of ``source`` for its kind, written into ``out_dir``.

    image: THUMBNAIL and SHARED; video: POSTER and MP4; audio: OPUS, in that
    order. Files are named :data:`OUTPUT_NAMES`, so ``source`` in ``out_dir``
    must not be one of them. Raises :class:`RenderError`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if source.resolve().parent == out_dir.resolve() and source.name in OUTPUT_NAMES:
        raise RenderError(f"the original {source.name} would be overwritten by a rendition")
    deadline = time.monotonic() + timeout_s
    match kind:
        case MediaKind.IMAGE:
            return render_image(source, out_dir)
        case MediaKind.VIDEO:
            return render_video(source, out_dir, deadline=deadline, threads=threads)
        case MediaKind.AUDIO:
            return render_audio(source, out_dir, deadline=deadline, threads=threads)


# -- images -----------------------------------------------------------------


def render_image(source: Path, out_dir: Path) -> list[Rendered]:
    """THUMBNAIL (JPEG, longest side :data:`THUMBNAIL_SIDE`) and SHARED (full
    size; JPEG, or PNG when the image has transparency), both upright (EXIF
    orientation applied) and without any metadata."""
    try:
        upright = _open_upright(source)
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
        pixels = _srgb(upright, "RGBA" if has_alpha else "RGB")
        if has_alpha:
            shared = Rendered(RenditionKind.SHARED, out_dir / "shared.png", _PNG)
            pixels.save(shared.path, "PNG", optimize=True)
            flat = Image.new("RGB", pixels.size, "white")
            flat.paste(pixels, mask=pixels.getchannel("A"))
        else:
            shared = Rendered(RenditionKind.SHARED, out_dir / "shared.jpg", _JPEG)
            pixels.save(shared.path, "JPEG", quality=90, optimize=True)
            flat = pixels
        flat.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
        flat.info = {}
        thumb = Rendered(RenditionKind.THUMBNAIL, out_dir / "thumbnail.jpg", _JPEG)
        flat.save(thumb.path, "JPEG", quality=80, optimize=True)
    except RenderError:
        raise
    except Exception as exc:
        # Pillow's decoders answer hostile bytes with many types (OSError,
        # SyntaxError, ValueError, EOFError...): all are a bad original.
        raise RenderError(f"unreadable image: {type(exc).__name__}: {exc}") from exc
    return [thumb, shared]


def _open_upright(source: Path) -> Image.Image:
    """The decoded first frame, EXIF orientation applied; a bomb is refused
    from the header, before any pixel is decoded."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(source, formats=IMAGE_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise RenderError(f"image too large to decode: {exc}") from exc
    with image:
        limit = Image.MAX_IMAGE_PIXELS
        width, height = image.size
        if limit is not None and width * height > limit:
            raise RenderError(
                f"image too large to decode: {width}x{height} pixels, over the limit of {limit}"
            )
        image.load()
        return ImageOps.exif_transpose(image)


def _srgb(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode``, its colours converted to sRGB when it carries an
    ICC profile; the result has no metadata (``info`` empty, so Pillow writes
    no EXIF, XMP, comment or profile)."""
    icc = image.info.get("icc_profile")
    converted: Image.Image | None = None
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb_mode = "RGBA" if image.mode == "RGBA" else "RGB"
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=rgb_mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a broken profile: take the pixels as they are
    out = (converted or image).convert(mode)
    out.info = {}
    return out


# -- video and audio --------------------------------------------------------


def render_video(source: Path, out_dir: Path, *, deadline: float, threads: int) -> list[Rendered]:
    """POSTER (a JPEG frame at :data:`POSTER_AT_S`, or the first one in a
    shorter video; at most :data:`POSTER_HEIGHT` high) and MP4 (H.264 + AAC,
    faststart, shorter side at most :data:`VIDEO_SHORT_SIDE`)."""
    ffmpeg = _tool("ffmpeg")
    poster = Rendered(RenditionKind.POSTER, out_dir / "poster.jpg", _JPEG)
    duration = probe_duration(source, timeout_s=_left(deadline))
    at = POSTER_AT_S if duration is None or duration > POSTER_AT_S else 0.0
    poster.path.unlink(missing_ok=True)  # a retry must not find the last try's
    _run(_poster_args(ffmpeg, source, poster.path, at, threads), deadline)
    if at and not _written(poster.path):
        # The duration was unknown and the video shorter: take the first frame.
        _run(_poster_args(ffmpeg, source, poster.path, 0.0, threads), deadline)
    if not _written(poster.path):
        raise RenderError("ffmpeg found no video frame for the poster")
    mp4 = Rendered(RenditionKind.MP4, out_dir / "video.mp4", "video/mp4")
    # Even dimensions (4:2:0), landscape or portrait alike; iw/ih are after
    # ffmpeg's autorotation, so a phone's rotated video is bounded upright.
    fit = (
        f"scale=w='if(gte(iw,ih),-2,trunc(min(iw,{VIDEO_SHORT_SIDE})/2)*2)'"
        f":h='if(gte(iw,ih),trunc(min(ih,{VIDEO_SHORT_SIDE})/2)*2,-2)'"
    )
    _run(
        [
            *_input(ffmpeg, source, threads),
            *("-map", "0:v:0", "-map", "0:a:0?", "-map_metadata", "-1", "-map_chapters", "-1"),
            *("-vf", fit, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"),
            *("-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k"),
            *("-movflags", "+faststart", "-threads", str(threads), "-f", "mp4", str(mp4.path)),
        ],
        deadline,
    )
    return [poster, mp4]


def render_audio(source: Path, out_dir: Path, *, deadline: float, threads: int) -> list[Rendered]:
    """OPUS: the first audio stream as Opus (libopus, :data:`OPUS_BITRATE`) in Ogg."""
    ffmpeg = _tool("ffmpeg")
    opus = Rendered(RenditionKind.OPUS, out_dir / "audio.opus", "audio/ogg")
    _run(
        [
            *_input(ffmpeg, source, threads),
            *("-map", "0:a:0", "-map_metadata", "-1", "-map_chapters", "-1"),
            *("-c:a", "libopus", "-b:a", OPUS_BITRATE, "-threads", str(threads)),
            *("-f", "ogg", str(opus.path)),
        ],
        deadline,
    )
    return [opus]


def probe_duration(source: Path, *, timeout_s: float = 30.0) -> float | None:
    """The container's duration in seconds, or None when ffprobe cannot tell
    (unknown, or unreadable: rendering then fails with ffmpeg's own error)."""
    args = [
        _tool("ffprobe"),
        *("-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ",".join(DEMUXERS)),
        *("-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1"),
        str(source),
    ]
    done = _exec(args, timeout_s)
    try:
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except ValueError:
        return None  # "N/A"


def _poster_args(ffmpeg: str, source: Path, out: Path, at: float, threads: int) -> list[str]:
    return [
        *_input(ffmpeg, source, threads, seek=at),
        *("-map", "0:v:0", "-map_metadata", "-1", "-frames:v", "1"),
        *("-vf", f"scale=w=-2:h='min(ih,{POSTER_HEIGHT})'", "-q:v", "3"),
        *("-threads", str(threads), "-f", "image2", "-update", "1", str(out)),
    ]


def _input(ffmpeg: str, source: Path, threads: int, *, seek: float = 0.0) -> list[str]:
    """ffmpeg's common head: quiet, never interactive, bounded threads, and
    ``source`` opened as a local file through an allowed demuxer."""
    return [
        ffmpeg,
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-y"),
        *("-filter_threads", str(threads), "-threads", str(threads)),
        *(("-ss", f"{seek:g}") if seek else ()),
        *("-protocol_whitelist", "file", "-format_whitelist", ",".join(DEMUXERS)),
        *("-i", str(source)),
    ]


def _run(args: list[str], deadline: float) -> None:
    done = _exec(args, _left(deadline))
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-STDERR_LINES:])
        raise RenderError(f"ffmpeg failed (exit {done.returncode}): {tail or 'no message'}")


def _exec(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a tool found by :func:`_tool`; on timeout ``subprocess.run`` kills it."""
    try:
        # An argument list from shutil.which and our own options: no shell.
        return subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        name = Path(args[0]).name
        raise RenderError(f"{name} ran out of time ({timeout_s:.0f} s)", retriable=True) from exc


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RenderError("rendering ran out of time", retriable=True)
    return left


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RenderError(f"{name} is not installed: run scripts/bootstrap (it installs ffmpeg)")
    return path


def _written(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0
