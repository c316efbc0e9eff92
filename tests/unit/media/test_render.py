"""media.render against the real Pillow, ffmpeg and ffprobe (scripts/bootstrap
installs ffmpeg; without it these tests fail, they never skip)."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageCms

from media.model import MediaKind, RenditionKind
from media.render import (
    OUTPUT_NAMES,
    POSTER_HEIGHT,
    THUMBNAIL_SIDE,
    Rendered,
    RenderError,
    probe_duration,
    render,
)

GPS = ExifTags.IFD.GPSInfo
ORIENTATION = ExifTags.Base.Orientation
LOCATION = "+48.8584+002.2945/"


def ffmpeg(*args: str) -> None:
    tool = shutil.which("ffmpeg")
    assert tool is not None, "ffmpeg is missing: run scripts/bootstrap"
    head = [tool, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*head, *args], check=True)


def ffprobe(path: Path) -> dict[str, Any]:
    tool = shutil.which("ffprobe")
    assert tool is not None, "ffprobe is missing: run scripts/bootstrap"
    out = subprocess.run(
        [tool, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    probed: dict[str, Any] = json.loads(out)
    return probed


def noise(size: int) -> bytes:
    """Random bytes, the same every run (so a test's outcome is too)."""
    return random.Random(17).randbytes(size)


def by_kind(rendered: list[Rendered]) -> dict[RenditionKind, Rendered]:
    return {r.kind: r for r in rendered}


def codecs(probed: dict[str, Any]) -> dict[str, str]:
    return {s["codec_type"]: s["codec_name"] for s in probed["streams"]}


def tags(probed: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = dict(probed["format"].get("tags", {}))
    for stream in probed["streams"]:
        found.update(stream.get("tags", {}))
    return {k.lower(): v for k, v in found.items()}


# -- images -----------------------------------------------------------------


def exif_photo(path: Path, size: tuple[int, int] = (400, 200)) -> None:
    """A JPEG as a phone writes it: sideways pixels with orientation 6, GPS
    in its EXIF, and a comment."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[ExifTags.Base.Model] = "PhoneModel X"
    exif.get_ifd(GPS).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (48.0, 51.0, 30.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
        }
    )
    image.save(path, "JPEG", exif=exif, comment=b"rue de la Paix")


def test_photo_source_carries_gps_and_orientation(tmp_path: Path) -> None:
    # The premise of the next test: the original really has what must go.
    source = tmp_path / "photo.jpg"
    exif_photo(source)
    with Image.open(source) as image:
        assert image.getexif()[ORIENTATION] == 6
        assert image.getexif().get_ifd(GPS)
        assert image.size == (400, 200)
    assert b"Exif" in source.read_bytes()


def test_image_renditions_are_upright_and_without_metadata(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    exif_photo(source)
    out = by_kind(render(MediaKind.IMAGE, source, tmp_path / "out"))
    assert set(out) == {RenditionKind.THUMBNAIL, RenditionKind.SHARED}

    thumb, shared = out[RenditionKind.THUMBNAIL], out[RenditionKind.SHARED]
    assert thumb.content_type == shared.content_type == "image/jpeg"
    with Image.open(thumb.path) as image:
        assert image.format == "JPEG"
        # 400x200 turned upright is 200x400, scaled to fit 320.
        assert image.size == (160, THUMBNAIL_SIDE)
        assert not image.getexif()
        assert "comment" not in image.info
    with Image.open(shared.path) as image:
        assert image.format == "JPEG"
        assert image.size == (200, 400)
        assert not image.getexif().get_ifd(GPS)
        assert not image.getexif()
    for rendered in (thumb, shared):
        data = rendered.path.read_bytes()
        assert b"Exif" not in data
        assert b"\xff\xe1" not in data  # no APP1 segment (EXIF or XMP)
        assert b"rue de la Paix" not in data
        assert b"PhoneModel" not in data


def test_a_large_image_thumbnail_fits_320_either_way(tmp_path: Path) -> None:
    source = tmp_path / "wide.png"
    Image.new("RGB", (1000, 250), "navy").save(source)
    out = by_kind(render(MediaKind.IMAGE, source, tmp_path / "out"))
    with Image.open(out[RenditionKind.THUMBNAIL].path) as image:
        assert image.size == (THUMBNAIL_SIDE, 80)
    with Image.open(out[RenditionKind.SHARED].path) as image:
        assert image.size == (1000, 250)
        assert image.format == "JPEG"


def test_an_image_with_alpha_is_shared_as_png(tmp_path: Path) -> None:
    source = tmp_path / "sticker.png"
    image = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (16, 16, 48, 32))
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "PhoneModel X"
    image.save(source, exif=exif)
    assert b"PhoneModel" in source.read_bytes()
    out = by_kind(render(MediaKind.IMAGE, source, tmp_path / "out"))
    shared = out[RenditionKind.SHARED]
    assert shared.content_type == "image/png"
    assert shared.path.suffix == ".png"
    with Image.open(shared.path) as rendered:
        assert rendered.mode == "RGBA"
        assert rendered.getpixel((0, 0)) == (255, 0, 0, 0)  # still transparent
        assert rendered.getpixel((20, 20)) == (0, 0, 255, 255)
        assert not rendered.getexif()
    assert b"PhoneModel" not in shared.path.read_bytes()
    with Image.open(out[RenditionKind.THUMBNAIL].path) as thumb:
        assert thumb.format == "JPEG"


def test_an_icc_profile_is_applied_then_dropped(tmp_path: Path) -> None:
    source = tmp_path / "profiled.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (40, 30), (200, 100, 50)).save(source, icc_profile=profile, quality=95)
    out = by_kind(render(MediaKind.IMAGE, source, tmp_path / "out"))
    for kind in (RenditionKind.SHARED, RenditionKind.THUMBNAIL):
        with Image.open(out[kind].path) as image:
            assert "icc_profile" not in image.info
            red, green, blue = image.convert("RGB").getpixel((20, 15))  # type: ignore[misc]
            assert abs(red - 200) + abs(green - 100) + abs(blue - 50) < 12


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (the pixels are never there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    # Just over Pillow's limit, where Pillow itself would only warn: a real,
    # tiny (one colour) PNG of 90 million pixels.
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None
    side = int(limit**0.5) + 10
    source = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(source)
    assert source.stat().st_size < 100_000
    with pytest.raises(RenderError, match="too large") as caught:
        render(MediaKind.IMAGE, source, tmp_path / "out")
    assert not caught.value.retriable
    assert not (tmp_path / "out" / "shared.jpg").exists()


def test_a_header_claiming_billions_of_pixels_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "bomb.png"
    source.write_bytes(png_header(100_000, 100_000))
    with pytest.raises(RenderError, match="too large"):
        render(MediaKind.IMAGE, source, tmp_path / "out")


def test_corrupt_image_raises_render_error(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    exif_photo(source)
    source.write_bytes(source.read_bytes()[:400])  # truncated mid-stream
    with pytest.raises(RenderError, match="unreadable image"):
        render(MediaKind.IMAGE, source, tmp_path / "out")
    source.write_bytes(noise(4096))
    with pytest.raises(RenderError, match="unreadable image"):
        render(MediaKind.IMAGE, source, tmp_path / "out")


def test_an_image_format_off_the_list_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), "red").save(source, "PPM")  # Pillow could read it back
    with pytest.raises(RenderError, match="unreadable image"):
        render(MediaKind.IMAGE, source, tmp_path / "out")


# -- video ------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of 1280x720 video with a tone, in a QuickTime file with a location."""
    path = tmp_path_factory.mktemp("clip") / "clip.mov"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30:duration=3"),
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=3"),
        *("-c:v", "mpeg4", "-q:v", "10", "-c:a", "pcm_s16le"),
        *("-metadata", f"location={LOCATION}", "-metadata", "title=secret"),
        str(path),
    )
    return path


def test_clip_source_carries_a_location(clip: Path) -> None:
    assert tags(ffprobe(clip)).get("location") == LOCATION
    assert probe_duration(clip) == pytest.approx(3.0, abs=0.1)


def test_video_renditions_poster_and_h264_aac_mp4(clip: Path, tmp_path: Path) -> None:
    out = by_kind(render(MediaKind.VIDEO, clip, tmp_path, threads=2))
    assert set(out) == {RenditionKind.POSTER, RenditionKind.MP4}

    poster = out[RenditionKind.POSTER]
    assert poster.content_type == "image/jpeg"
    with Image.open(poster.path) as image:
        assert image.format == "JPEG"
        assert image.size == (1280, 720)
        assert not image.getexif()

    mp4 = out[RenditionKind.MP4]
    assert mp4.content_type == "video/mp4"
    probed = ffprobe(mp4.path)
    assert "mp4" in probed["format"]["format_name"]
    assert codecs(probed) == {"video": "h264", "audio": "aac"}
    video = next(s for s in probed["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1280, 720)
    assert float(probed["format"]["duration"]) == pytest.approx(3.0, abs=0.2)
    found = tags(probed)
    assert "location" not in found
    assert "title" not in found
    assert LOCATION.encode() not in mp4.path.read_bytes()
    # faststart: the index (moov) comes before the media data (mdat).
    data = mp4.path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


@pytest.mark.parametrize(
    ("size", "mp4_size"),
    [("2400x1350", (1920, 1080)), ("1350x2400", (1080, 1920))],
    ids=["landscape", "portrait"],
)
def test_a_short_large_video_is_bounded_and_posted_from_its_first_frame(
    tmp_path: Path, size: str, mp4_size: tuple[int, int]
) -> None:
    # 0.6 s, shorter than the poster's 1 s, in WebM (VP8, no audio).
    source = tmp_path / "short.webm"
    ffmpeg(
        *("-f", "lavfi", "-i", f"testsrc=size={size}:rate=5:duration=0.6"),
        *("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"),
        str(source),
    )
    out = by_kind(render(MediaKind.VIDEO, source, tmp_path / "out"))
    with Image.open(out[RenditionKind.POSTER].path) as image:
        assert image.height == POSTER_HEIGHT
        assert image.width <= POSTER_HEIGHT * 16 // 9 + 2
    probed = ffprobe(out[RenditionKind.MP4].path)
    assert codecs(probed) == {"video": "h264"}
    video = probed["streams"][0]
    assert (video["width"], video["height"]) == mp4_size


def test_a_phone_video_filmed_sideways_is_rendered_upright(tmp_path: Path) -> None:
    # Phones store landscape pixels and a display matrix saying "turn 90°".
    flat, source = tmp_path / "flat.mov", tmp_path / "phone.mov"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:duration=1.5"),
        *("-c:v", "mpeg4", str(flat)),
    )
    ffmpeg("-i", str(flat), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(source))
    assert "rotation" in json.dumps(ffprobe(source)["streams"][0].get("side_data_list", []))

    out = by_kind(render(MediaKind.VIDEO, source, tmp_path / "out"))
    with Image.open(out[RenditionKind.POSTER].path) as image:
        assert image.size == (240, 320)
    video = ffprobe(out[RenditionKind.MP4].path)["streams"][0]
    assert (video["width"], video["height"]) == (240, 320)
    # Upright pixels, and no matrix left to make a player turn them again.
    assert "side_data_list" not in video


def test_corrupt_video_raises_render_error(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(noise(64 * 1024))
    with pytest.raises(RenderError, match="ffmpeg failed") as caught:
        render(MediaKind.VIDEO, source, tmp_path / "out")
    assert "Invalid data" in str(caught.value) or "not on whitelist" in str(caught.value)
    assert not caught.value.retriable


def test_a_concat_script_posing_as_video_is_refused(clip: Path, tmp_path: Path) -> None:
    # Left to probe freely, ffmpeg would open this as a concat script and
    # render the file it names: evidence of someone else's.
    shutil.copy(clip, tmp_path / "other.mov")
    source = tmp_path / "clip.mp4"
    source.write_text("ffconcat version 1.0\nfile 'other.mov'\n")
    with pytest.raises(RenderError, match="not on whitelist"):
        render(MediaKind.VIDEO, source, tmp_path / "out")


def test_running_out_of_time_is_a_retriable_render_error(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="out of time") as caught:
        render(MediaKind.VIDEO, clip, tmp_path, timeout_s=0.05)
    assert caught.value.retriable


def test_missing_ffmpeg_says_to_run_bootstrap(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RenderError, match="scripts/bootstrap"):
        render(MediaKind.VIDEO, clip, tmp_path / "out")


def test_an_original_named_like_a_rendition_is_refused(clip: Path, tmp_path: Path) -> None:
    assert "video.mp4" in OUTPUT_NAMES
    source = tmp_path / "video.mp4"
    shutil.copy(clip, source)
    with pytest.raises(RenderError, match="overwritten"):
        render(MediaKind.VIDEO, source, tmp_path)
    assert source.read_bytes() == clip.read_bytes()


# -- audio ------------------------------------------------------------------


def test_audio_rendition_is_ogg_opus_without_tags(tmp_path: Path) -> None:
    source = tmp_path / "voice.wav"
    ffmpeg(
        *("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100:duration=2"),
        *("-metadata", "title=secret", "-metadata", "artist=someone"),
        str(source),
    )
    assert "title" in tags(ffprobe(source))
    (opus,) = render(MediaKind.AUDIO, source, tmp_path / "out")
    assert opus.kind is RenditionKind.OPUS
    assert opus.content_type == "audio/ogg"
    probed = ffprobe(opus.path)
    assert probed["format"]["format_name"] == "ogg"
    assert codecs(probed) == {"audio": "opus"}
    assert float(probed["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert int(probed["streams"][0]["sample_rate"]) == 48_000
    found = tags(probed)
    assert "title" not in found
    assert "artist" not in found
    assert b"secret" not in opus.path.read_bytes()


def test_corrupt_audio_raises_render_error(tmp_path: Path) -> None:
    source = tmp_path / "voice.ogg"
    source.write_bytes(noise(8 * 1024))
    with pytest.raises(RenderError, match="ffmpeg failed"):
        render(MediaKind.AUDIO, source, tmp_path / "out")
