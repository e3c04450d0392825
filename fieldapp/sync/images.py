"""Uploaded photos and signatures, cleaned: decoded under limits, re-encoded, metadata dropped.

Pure (Pillow, no Flask, no database): ``clean(data, content_type)`` returns the bytes to store.

A phone's camera writes far more into a photo than the record needs: the owner's name, the
camera's serial number, maker notes, a thumbnail (which may show a different picture than the
photo after an edit), XMP, an ICC profile naming the device. Our own phones lose all of it on
the canvas that shrinks the photo, but the protocol is public, so the server does not rely on
that. Every upload is decoded (which also proves it is a whole image of the declared type),
turned upright by its EXIF orientation, and encoded again (JPEG and WebP photos at quality 85,
PNG optimised) with only the capture time (``DateTimeOriginal`` and its ``OffsetTimeOriginal``)
and the GPS IFD kept from the EXIF. An embedded ICC profile is applied (the pixels are converted
to sRGB, as the phone's canvas does) and not stored.

An upload that is already bare (nothing in it but the image and at most the EXIF this module
would keep: no other EXIF, XMP, ICC, comments, thumbnails, trailing bytes; see ``is_bare``) is
stored as it came unless encoding it again makes it at least 10 % smaller: a second pass over
what this module wrote is a no-op, and a bare file never grows. (Our phones' canvas JPEGs are
not bare: Chrome puts an sRGB profile in them. They are re-encoded once, with their own
quantisation tables, about 1 % smaller, at a PSNR over 40 dB.) A JPEG is never encoded finer
than its own quantisation tables (a quality-70 photo stays at 70): cleaning does not inflate a
low-quality photo.
"""

import io
from dataclasses import dataclass

from PIL import Image

try:  # Pillow's wheels are built with Little CMS; without it, profiles are dropped unapplied.
    from PIL import ImageCms

    _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
except Exception:  # pragma: no cover
    ImageCms = _SRGB = None

MAX_PIXELS = 40_000_000  # a 48-megapixel sensor's binned 12 MP photo fits; a bomb does not
JPEG_QUALITY = 85
WEBP_QUALITY = 85
KEEP_RATIO = 0.9  # a bare upload is kept unless encoding it again saves 10 % or more

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}

# EXIF tags (the numbers are the EXIF standard's).
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
ORIENTATION = 0x0112
DATETIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011
CAPTURE_TAGS = (DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL)

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageRefused(Exception):
    """The upload cannot be stored as an image. ``reason``: ``too_many_pixels`` (more than
    ``MAX_PIXELS``: a decompression bomb or simply too big) or ``damaged_image`` (truncated,
    corrupt, or not decodable as the declared type)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Cleaned:
    data: bytes
    width: int
    height: int
    reencoded: bool  # False: the upload was bare and is stored byte for byte


def clean(data: bytes, content_type: str, max_pixels: int = MAX_PIXELS) -> Cleaned:
    """The bytes to store for an upload of ``content_type``; raises ``ImageRefused``."""
    fmt = FORMATS[content_type]
    try:
        # Only the declared format's decoder may read it (no guessing among Pillow's dozens).
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as error:
        raise ImageRefused("too_many_pixels", str(error)) from None
    except Exception as error:  # whatever the decoder trips on, it is damaged
        raise ImageRefused("damaged_image", str(error)) from None
    with image:
        width, height = image.size
        # Checked on the header, before a single pixel is decoded.
        if width * height > max_pixels:
            raise ImageRefused("too_many_pixels", f"{width}x{height}")
        try:
            image.load()  # a truncated file raises here (Pillow's LOAD_TRUNCATED_IMAGES is off)
        except Exception as error:
            raise ImageRefused("damaged_image", str(error)) from None
        exif = _exif(image)
        icc = image.info.get("icc_profile")
        try:
            kept = _kept_exif(exif)
            options = _jpeg_options(image) if fmt == "JPEG" else {}
            # One copy of the pixels at a time (a 40 MP RGB picture is 120 MB): a step that
            # makes a new image frees the one before.
            pixels = image
            pixels = _instead(pixels, _to_srgb(pixels, icc))
            pixels = _instead(pixels, _upright(pixels, exif))
            pixels = _instead(pixels, _for_format(pixels, fmt))
            encoded = _encode(pixels, fmt, kept, options)
        except Exception as error:  # a decoder that accepted nonsense
            raise ImageRefused("damaged_image", str(error)) from None
    if is_bare(data, fmt, kept) and len(encoded) > KEEP_RATIO * len(data):
        return Cleaned(data, width, height, reencoded=False)
    return Cleaned(encoded, pixels.width, pixels.height, reencoded=True)


# ----- what is kept ----------------------------------------------------------------------


def _exif(image: Image.Image) -> Image.Exif | None:
    try:
        exif = image.getexif()
        # Read the sub-IFDs now: a malformed one is a reason to drop the metadata, not to fail.
        exif.get_ifd(EXIF_IFD)
        exif.get_ifd(GPS_IFD)
        return exif
    except Exception:
        return None


def _kept_exif(exif: Image.Exif | None) -> bytes:
    """The EXIF block of the stored file: capture time and GPS only (or nothing)."""
    if exif is None:
        return b""
    capture = {tag: value for tag, value in exif.get_ifd(EXIF_IFD).items() if tag in CAPTURE_TAGS}
    gps = dict(exif.get_ifd(GPS_IFD))
    for gps_kept in (gps, {}):  # a GPS IFD that cannot be written is dropped, not fatal
        kept = Image.Exif()
        if capture:
            kept[EXIF_IFD] = capture
        if gps_kept:
            kept[GPS_IFD] = gps_kept
        if not kept:
            return b""
        try:
            return kept.tobytes()
        except Exception:
            pass
    return b""


def _upright(image: Image.Image, exif: Image.Exif | None) -> Image.Image:
    orientation = exif.get(ORIENTATION) if exif is not None else None
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def _instead(old: Image.Image, new: Image.Image) -> Image.Image:
    if new is not old:
        old.close()  # frees its pixels now, not when the last reference goes
    return new


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Apply an embedded colour profile (the stored file carries none); a bad one is ignored."""
    if not icc or ImageCms is None or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode != "CMYK" and "srgb" in ImageCms.getProfileDescription(source).lower():
            return image  # already sRGB (most Android cameras): 0.2 s saved on 12 MP
        if image.mode == "CMYK":
            return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
        ImageCms.profileToProfile(image, source, _SRGB, inPlace=True)
        return image
    except Exception:  # a profile that does not parse: the pixels stay as they are
        return image


_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"}


def _for_format(image: Image.Image, fmt: str) -> Image.Image:
    if fmt == "JPEG" and image.mode not in ("L", "RGB"):
        return image.convert("RGB")
    if fmt == "WEBP" and image.mode not in ("RGB", "RGBA"):
        has_alpha = image.mode in ("LA", "PA", "RGBA") or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if fmt == "PNG" and image.mode not in _PNG_MODES:
        return image.convert("RGBA")
    return image


def _jpeg_options(image: Image.Image) -> dict:
    """Quality 85, or the source's own quantisation if that is coarser: encoding a quality-70
    photo at 85 would make it larger and look no better."""
    from PIL import JpegImagePlugin

    tables = getattr(image, "quantization", None)
    if tables and 0 in tables and sum(tables[0]) > _Q85_LUMA_SUM:
        options = {"qtables": [tables[key] for key in sorted(tables)]}
        sampling = JpegImagePlugin.get_sampling(image)
        if sampling != -1:
            options["subsampling"] = sampling
        return options
    return {"quality": JPEG_QUALITY}


def _luma_table(quality: int) -> list[int]:
    """The luminance quantisation table Pillow's encoder uses at ``quality``."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "JPEG", quality=quality)
    with Image.open(buffer) as probe:
        return list(probe.quantization[0])


_Q85_LUMA_SUM = sum(_luma_table(JPEG_QUALITY))


def _encode(image: Image.Image, fmt: str, exif: bytes, jpeg: dict) -> bytes:
    transparency = image.info.get("transparency") if fmt == "PNG" else None
    # Pillow falls back to ``info`` for a comment, an ICC profile, XMP…: nothing of it goes.
    image.info = {}
    options: dict = {"exif": exif} if exif else {}
    if fmt == "JPEG":
        options.update(jpeg, optimize=True)
    elif fmt == "WEBP":
        # method 2 of 0-6: 0.6 s for 12 MP instead of 1.6 s (the default, 4), 3 % larger.
        options.update(quality=WEBP_QUALITY, method=2)
    else:
        options.update(optimize=True)
        if transparency is not None:
            options["transparency"] = transparency
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# ----- bare uploads ----------------------------------------------------------------------

_NOT_BARE = object()


def is_bare(data: bytes, fmt: str, exif: bytes = b"") -> bool:
    """Whether the file holds nothing but the image and exactly the EXIF block ``exif`` (none
    when empty): only the structures needed to decode it, and nothing after its end. Anything
    else (other EXIF, XMP, ICC, comments, thumbnails, a second image, unknown chunks, trailing
    bytes) makes it not bare."""
    found = {"JPEG": _jpeg_exif, "PNG": _png_exif, "WEBP": _webp_exif}[fmt](data)
    if found is _NOT_BARE:
        return False
    return _exif_body(found) == _exif_body(exif)


def _exif_body(exif: bytes | None) -> bytes:
    """EXIF without the ``Exif\\0\\0`` header JPEG puts in front (PNG and WebP do not)."""
    exif = exif or b""
    return exif[6:] if exif.startswith(b"Exif\x00\x00") else exif


# SOF0-2 (baseline, extended, progressive), DHT, DQT, DRI, SOS. APP0 and APP1 are checked apart.
_JPEG_SEGMENTS = {0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xDA}


def _jpeg_exif(data: bytes):
    """The file's EXIF block (``None`` if it has none), or ``_NOT_BARE``."""
    n = len(data)
    if not data.startswith(b"\xff\xd8"):
        return _NOT_BARE
    exif = None
    i = 2
    while i < n:
        if data[i] != 0xFF:
            return _NOT_BARE
        while i < n and data[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            return _NOT_BARE
        marker = data[i]
        i += 1
        if marker == 0xD9:  # end of image: nothing may follow
            return exif if i == n else _NOT_BARE
        if i + 2 > n:
            return _NOT_BARE
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2 or i + length > n:
            return _NOT_BARE
        segment = data[i + 2 : i + length]
        if marker == 0xE0:
            # JFIF header with no thumbnail (the 14-byte form); JFXX (a thumbnail) is not bare.
            if len(segment) != 14 or not segment.startswith(b"JFIF\x00") or segment[12:] != b"\0\0":
                return _NOT_BARE
        elif marker == 0xE1:  # one EXIF block (XMP is APP1 too, and is not bare)
            if exif is not None or not segment.startswith(b"Exif\x00\x00"):
                return _NOT_BARE
            exif = segment
        elif marker not in _JPEG_SEGMENTS:
            return _NOT_BARE
        i += length
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not RSTn or 00
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return _NOT_BARE
                following = data[j + 1]
                if following == 0xFF:
                    i = j + 1
                elif following == 0x00 or 0xD0 <= following <= 0xD7:
                    i = j + 2
                else:
                    i = j
                    break
    return _NOT_BARE


_PNG_CHUNKS = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"bKGD",
    b"sBIT", b"eXIf",
}  # fmt: skip


def _png_exif(data: bytes):
    n = len(data)
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _NOT_BARE
    exif = None
    i = 8
    while i + 12 <= n:
        kind = data[i + 4 : i + 8]
        end = i + 12 + int.from_bytes(data[i : i + 4], "big")
        if end > n or kind not in _PNG_CHUNKS:
            return _NOT_BARE
        if kind == b"eXIf":
            if exif is not None:
                return _NOT_BARE
            exif = data[i + 8 : end - 4]
        i = end
        if kind == b"IEND":
            return exif if i == n else _NOT_BARE
    return _NOT_BARE


_WEBP_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"EXIF"}


def _webp_exif(data: bytes):
    n = len(data)
    if n < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return _NOT_BARE
    if int.from_bytes(data[4:8], "little") + 8 != n:
        return _NOT_BARE
    exif = None
    i = 12
    while i < n:
        if i + 8 > n:
            return _NOT_BARE
        kind = data[i : i + 4]
        size = int.from_bytes(data[i + 4 : i + 8], "little")
        end = i + 8 + size + (size & 1)
        if end > n or kind not in _WEBP_CHUNKS:
            return _NOT_BARE
        if kind == b"EXIF":
            if exif is not None:
                return _NOT_BARE
            exif = data[i + 8 : i + 8 + size]
        i = end
    return exif if i == n else _NOT_BARE
