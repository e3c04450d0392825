"""Uploaded images are decoded under limits and stored re-encoded with only the metadata a
record needs (capture time, GPS). The helpers here make the camera files the tests upload."""

import io
import math
import struct
import zlib

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageStat
from PIL.TiffImagePlugin import IFDRational

from fieldapp.sync import images
from fieldapp.sync.images import ImageRefused, clean, is_bare

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)
SECRETS = (b"Canon", b"SECRETMODEL", b"SN-0042-SECRET", b"OWNER-ZHANG", b"MAKERNOTE", b"XMPSECRET")
TAKEN = "2026:11:23 09:41:07"
LATITUDE = (IFDRational(31), IFDRational(14), IFDRational(3021, 100))


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """Something photo-like (gradients, shapes, sensor noise): flat colours compress unlike
    photos, and whether re-encoding pays depends on that."""
    r = Image.linear_gradient("L").resize((width, height))
    g = Image.radial_gradient("L").resize((width, height))
    b = Image.effect_noise((max(width // 8, 1), max(height // 8, 1)), 60).resize((width, height))
    picture = Image.merge("RGB", (r, g, b))
    draw = ImageDraw.Draw(picture)
    for i in range(40):
        x, y = (i * 7919 + seed * 31) % width, (i * 104729 + seed * 17) % height
        colour = ((i * 50 + seed) % 256, (i * 90) % 256, (i * 20) % 256)
        draw.ellipse((x, y, x + width // 10, y + height // 12), fill=colour)
    return Image.blend(picture, Image.effect_noise((width, height), 12).convert("RGB"), 0.15)


def save(picture: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


def canvas_jpeg(width=1600, height=1200, seed=0) -> bytes:
    """What our phones send: a canvas JPEG at quality 0.82, no metadata at all."""
    return save(scene(width, height, seed), quality=82)


def camera_exif(orientation: int = 6) -> bytes:
    """EXIF as a camera writes it: make, model, owner, serial number, maker note, the capture
    time, GPS, an orientation, and a thumbnail of a *different* picture (green) in IFD1."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS SECRETMODEL"  # Model
    exif[0x013B] = "OWNER-ZHANG San"  # Artist
    exif[0x0112] = orientation
    exif[images.EXIF_IFD] = {
        images.DATETIME_ORIGINAL: TAKEN,
        images.OFFSET_TIME_ORIGINAL: "+08:00",
        0xA431: "SN-0042-SECRET",  # BodySerialNumber
        0x927C: b"MAKERNOTE private bytes",
    }
    exif[images.GPS_IFD] = {1: "N", 2: LATITUDE, 3: "E", 4: (121, 28, 45.5)}
    tiff = bytearray(exif.tobytes()[6:])  # without "Exif\0\0"; big-endian ("MM")
    entries = struct.unpack(">H", tiff[8:10])[0]
    next_ifd = 10 + 12 * entries
    if len(tiff) % 2:
        tiff += b"\0"
    thumbnail = save(Image.new("RGB", (160, 120), GREEN), quality=70)
    ifd1 = len(tiff)
    start = ifd1 + 2 + 3 * 12 + 4
    tiff[next_ifd : next_ifd + 4] = struct.pack(">I", ifd1)
    tiff += struct.pack(">H", 3)
    tiff += struct.pack(">HHIHH", 0x0103, 3, 1, 6, 0)  # Compression: JPEG
    tiff += struct.pack(">HHII", 0x0201, 4, 1, start)  # JPEGInterchangeFormat
    tiff += struct.pack(">HHII", 0x0202, 4, 1, len(thumbnail))  # …Length
    tiff += struct.pack(">I", 0) + thumbnail
    return b"Exif\x00\x00" + bytes(tiff)


def sideways() -> Image.Image:
    """Landscape pixels, left half red and right half blue: upright (EXIF orientation 6, turn a
    quarter clockwise) it is a portrait with red on top."""
    picture = scene(640, 480)
    picture.paste(RED, (0, 0, 320, 480))
    picture.paste(BLUE, (320, 0, 640, 480))
    return picture


def camera_jpeg(fmt="JPEG", **options) -> bytes:
    """A camera's JPEG (or WebP): everything in ``camera_exif``, XMP, a comment, an ICC profile."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    extra = {"comment": b"OWNER-ZHANG's camera"} if fmt == "JPEG" else {}
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">XMPSECRET</x:xmpmeta>'
    return save(sideways(), fmt, exif=camera_exif(), xmp=xmp, icc_profile=icc, quality=92, **extra)


def signature_png() -> bytes:
    """What the signature pad sends: RGBA, white background, black strokes."""
    pad = Image.new("RGBA", (600, 200), (255, 255, 255, 255))
    draw = ImageDraw.Draw(pad)
    draw.line([(20, 150), (120, 40), (220, 160), (320, 50), (560, 120)], fill="black", width=4)
    return save(pad, "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def kept_metadata(data: bytes) -> tuple[dict, dict, dict]:
    with Image.open(io.BytesIO(data)) as stored:
        exif = stored.getexif()
        return dict(exif), dict(exif.get_ifd(images.EXIF_IFD)), dict(exif.get_ifd(images.GPS_IFD))


def assert_only_capture_time_and_gps(data: bytes) -> None:
    top, sub, gps = kept_metadata(data)
    assert set(top) <= {images.EXIF_IFD, images.GPS_IFD}  # no make, model, artist, orientation
    assert sub == {images.DATETIME_ORIGINAL: TAKEN, images.OFFSET_TIME_ORIGINAL: "+08:00"}
    assert gps[1] == "N" and gps[3] == "E"
    assert [float(x) for x in gps[2]] == [31.0, 14.0, 30.21]
    for secret in SECRETS:
        assert secret not in data, secret
    assert data.count(b"\xff\xd8\xff") <= 1  # no embedded thumbnail (a second JPEG)
    with Image.open(io.BytesIO(data)) as stored:
        assert "icc_profile" not in stored.info and "xmp" not in stored.info
        assert "comment" not in stored.info


def assert_upright(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as stored:
        stored.load()
        assert stored.size == (480, 640)
        top, bottom = stored.convert("RGB").getpixel((240, 100)), stored.getpixel((240, 540))
    assert top[0] > 180 and top[2] < 60, top  # red
    assert bottom[2] > 180 and bottom[0] < 60, bottom  # blue


def test_a_camera_jpeg_keeps_only_its_capture_time_and_gps_and_is_turned_upright():
    original = camera_jpeg()
    for secret in SECRETS:  # the test file really carries what must go
        assert secret in original, secret
    assert original.count(b"\xff\xd8\xff") == 2

    cleaned = clean(original, "image/jpeg")

    assert cleaned.reencoded and (cleaned.width, cleaned.height) == (480, 640)
    assert_only_capture_time_and_gps(cleaned.data)
    assert_upright(cleaned.data)
    assert not is_bare(cleaned.data, "JPEG")  # it has EXIF (what was kept)


def test_a_webp_photo_is_cleaned_the_same_way_and_stays_webp():
    cleaned = clean(camera_jpeg("WEBP"), "image/webp")
    assert cleaned.data[:4] == b"RIFF" and cleaned.data[8:12] == b"WEBP"
    assert_only_capture_time_and_gps(cleaned.data)
    assert_upright(cleaned.data)


def test_a_jpeg_with_nothing_to_drop_is_stored_byte_for_byte():
    sent = canvas_jpeg()
    assert is_bare(sent, "JPEG")
    cleaned = clean(sent, "image/jpeg")
    assert cleaned.data == sent and not cleaned.reencoded


def test_chromes_canvas_jpeg_is_re_encoded_once_without_growing_or_visible_loss():
    """Chrome's canvas JPEG (what our phones send) carries an sRGB ICC profile in APP2: it is
    re-encoded with its own quantisation tables, once; a second pass keeps it."""
    picture = scene(1600, 1200, seed=5)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    sent = save(picture, quality=82, icc_profile=srgb)
    assert not is_bare(sent, "JPEG")
    cleaned = clean(sent, "image/jpeg")
    assert cleaned.reencoded and len(cleaned.data) < len(sent)
    assert clean(cleaned.data, "image/jpeg").data == cleaned.data
    with Image.open(io.BytesIO(sent)) as before, Image.open(io.BytesIO(cleaned.data)) as after:
        assert after.quantization == before.quantization  # not re-quantised more coarsely
        difference = ImageChops.difference(before.convert("RGB"), after.convert("RGB"))
    mse = sum(rms**2 for rms in ImageStat.Stat(difference).rms) / 3
    assert 10 * math.log10(255**2 / mse) > 38  # PSNR in dB: no visible loss


def test_cleaning_twice_changes_nothing_and_a_bare_file_never_grows():
    once = clean(camera_jpeg(), "image/jpeg").data
    assert clean(once, "image/jpeg").data == once
    for quality in (50, 70, 82, 90, 95, 100):
        sent = save(scene(800, 600, quality), quality=quality)
        stored = clean(sent, "image/jpeg").data
        assert len(stored) <= len(sent), quality
        assert clean(stored, "image/jpeg").data == stored, quality


def test_a_bare_high_quality_jpeg_is_made_smaller():
    sent = save(scene(1600, 1200), quality=97)
    cleaned = clean(sent, "image/jpeg")
    assert cleaned.reencoded and len(cleaned.data) < 0.9 * len(sent)


def test_a_low_quality_jpeg_with_metadata_does_not_grow():
    sent = save(scene(1600, 1200), quality=60, exif=camera_exif(orientation=1))
    cleaned = clean(sent, "image/jpeg")
    assert cleaned.reencoded and len(cleaned.data) < len(sent)
    assert_only_capture_time_and_gps(cleaned.data)


def test_a_signature_png_stays_a_lossless_png():
    sent = signature_png()
    cleaned = clean(sent, "image/png")
    assert cleaned.data.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(cleaned.data)) as stored, Image.open(io.BytesIO(sent)) as pad:
        assert stored.format == "PNG" and stored.size == (600, 200)
        assert stored.convert("RGBA").tobytes() == pad.convert("RGBA").tobytes()
    assert len(cleaned.data) <= len(sent)


def test_png_text_chunks_and_profiles_are_dropped_and_transparency_kept():
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "OWNER-ZHANG")
    text.add_itxt("XML:com.adobe.xmp", "XMPSECRET")
    palette = Image.new("P", (64, 64), 0)
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    ImageDraw.Draw(palette).line([(0, 0), (63, 63)], fill=1, width=3)
    sent = save(palette, "PNG", pnginfo=text, transparency=0, exif=camera_exif(orientation=1))
    assert not is_bare(sent, "PNG")
    cleaned = clean(sent, "image/png")
    for secret in SECRETS:
        assert secret not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as stored:
        rgba = stored.convert("RGBA")
        assert rgba.getpixel((0, 40))[3] == 0 and rgba.getpixel((30, 30))[3] == 255
    assert kept_metadata(cleaned.data)[1][images.DATETIME_ORIGINAL] == TAKEN


def test_a_cmyk_jpeg_becomes_rgb():
    sent = save(scene(200, 100).convert("CMYK"), quality=90)
    with Image.open(io.BytesIO(clean(sent, "image/jpeg").data)) as stored:
        assert stored.mode == "RGB" and stored.size == (200, 100)


def test_a_colour_profile_is_applied_not_kept():
    lab_ish = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, lab_ish, b"not a profile at all"):
        sent = save(scene(200, 100), quality=90, icc_profile=icc)
        with Image.open(io.BytesIO(clean(sent, "image/jpeg").data)) as stored:
            stored.load()
            assert "icc_profile" not in stored.info and stored.mode == "RGB"


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (8000, 6000), (40_000_001, 1)])
def test_too_many_pixels_is_refused_before_decoding(width, height):
    with pytest.raises(ImageRefused) as refused:
        clean(png_claiming(width, height), "image/png")
    assert refused.value.reason == "too_many_pixels"


def test_the_pixel_limit_is_the_modules_own():
    assert Image.MAX_IMAGE_PIXELS > images.MAX_PIXELS  # not loosened globally by us
    assert clean(png_claiming(64, 4), "image/png", max_pixels=256).width == 64
    with pytest.raises(ImageRefused):
        clean(png_claiming(64, 5), "image/png", max_pixels=256)


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("truncated jpeg", canvas_jpeg(400, 300)[:6000], "image/jpeg"),
        ("jpeg magic, then junk", b"\xff\xd8\xff\xe0" + b"\x13" * 2000, "image/jpeg"),
        ("truncated png", signature_png()[:900], "image/png"),
        ("png with a broken header", b"\x89PNG\r\n\x1a\n" + b"\0" * 60, "image/png"),
        ("webp of nothing", b"RIFF\x10\0\0\0WEBPVP8 \x04\0\0\0abcd", "image/webp"),
        ("png declared as jpeg", signature_png(), "image/jpeg"),
    ],
)
def test_damaged_files_are_refused_with_a_reason(name, data, content_type):
    with pytest.raises(ImageRefused) as refused:
        clean(data, content_type)
    assert refused.value.reason == "damaged_image", name


def test_what_counts_as_bare():
    plain = save(scene(64, 48), quality=80)
    assert is_bare(plain, "JPEG")
    assert is_bare(save(scene(64, 48), quality=80, progressive=True), "JPEG")
    assert not is_bare(plain + b"<?php evil(); ?>", "JPEG")  # bytes after the end
    assert not is_bare(plain[:-2], "JPEG")
    assert not is_bare(save(scene(64, 48), comment=b"hi"), "JPEG")
    assert not is_bare(save(scene(64, 48), exif=camera_exif()), "JPEG")
    assert is_bare(signature_png(), "PNG")
    assert not is_bare(signature_png() + b"x", "PNG")
    webp = save(scene(64, 48), "WEBP", quality=80)
    assert is_bare(webp, "WEBP")
    assert not is_bare(save(scene(64, 48), "WEBP", exif=camera_exif()), "WEBP")
    assert not is_bare(webp + b"xx", "WEBP")
