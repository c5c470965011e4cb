"""Verification and re-encoding of uploaded images (CPO logos, location photos); no Django here.

Nothing the client sent is stored verbatim: the image is decoded and re-encoded, so metadata (EXIF,
GPS, XMP, comments, text chunks), appended payloads and polyglots do not survive. `ImageRejected`
carries the HTTP status the view answers with; `storage_name` never uses the client's file name.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO

from PIL import Image, ImageCms, ImageFile, ImageOps

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
ACCEPTED = "JPEG, PNG or WebP"
# Pillow format name -> (content type, extension, save options).
_FORMATS = {
    "JPEG": ("image/jpeg", "jpg", {"quality": 85, "optimize": True, "progressive": True}),
    "PNG": ("image/png", "png", {"optimize": True}),
    "WEBP": ("image/webp", "webp", {"quality": 85}),
}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageRejected(Exception):
    """The upload is refused; `status` is 413, 415 or 400 and `reason` says what is accepted."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ProcessedImage:
    content: bytes
    thumbnail: bytes
    content_type: str
    extension: str  # "jpg" | "png" | "webp"
    width: int
    height: int


def image_process(
    *,
    data: BinaryIO,
    max_bytes: int,
    max_pixels: int = 40_000_000,
    thumbnail_size: tuple[int, int] = (320, 320),
    max_dimension: int = 4096,
) -> ProcessedImage:
    raw = _read_limited(data, max_bytes)
    im = _decode(raw, max_pixels, max_dimension)
    # MPO: the multi-picture JPEG some cameras write; we keep its first picture, as a JPEG.
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    content_type, extension, options = _FORMATS[fmt]
    clean = _normalise(im, alpha_allowed=fmt != "JPEG")
    clean.thumbnail((max_dimension, max_dimension), Image.Resampling.LANCZOS)
    thumb = clean.copy()
    thumb.thumbnail(thumbnail_size, Image.Resampling.LANCZOS)
    return ProcessedImage(
        content=_encode(clean, fmt, options),
        thumbnail=_encode(thumb, fmt, options),
        content_type=content_type,
        extension=extension,
        width=clean.width,
        height=clean.height,
    )


def storage_name(*, prefix: str, extension: str) -> str:
    """"logos/2026/11/<uuid4 hex>.png": unguessable, collision-free, month folders stay small."""
    now = datetime.now(timezone.utc)
    return f"{prefix.strip('/')}/{now:%Y}/{now:%m}/{uuid.uuid4().hex}.{extension.lstrip('.')}"


def _read_limited(data: BinaryIO, max_bytes: int) -> bytes:
    # One byte more than allowed tells "too large" without reading the rest of the stream; the
    # loop is there because a raw stream may return fewer bytes than asked before EOF.
    chunks: list[bytes] = []
    remaining = max_bytes + 1
    while remaining > 0 and (chunk := data.read(remaining)):
        chunks.append(chunk)
        remaining -= len(chunk)
    if remaining <= 0:
        raise ImageRejected(413, f"The image is too large: at most {_human(max_bytes)}.")
    raw = b"".join(chunks)
    if not raw:
        raise ImageRejected(400, f"The file is empty; send a {ACCEPTED} image.")
    return raw


def _decode(raw: bytes, max_pixels: int, max_dimension: int) -> Image.Image:
    try:
        # verify() checks the structure (PNG CRCs) but leaves the image unusable, hence the re-open;
        # both opens check the size declared in the header before any pixel is decompressed.
        _open(raw, max_pixels, max_dimension).verify()
        im = _open(raw, max_pixels, max_dimension)
        # JPEG can decode at 1/2..1/8 scale directly: a big photo never exists at full size.
        im.draft(None, (max_dimension, max_dimension))
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own global limit, reached only if max_pixels is set above it.
        raise _too_many_pixels(max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError):  # Pillow's plugins vary; all mean "bad"
        raise _unreadable(raw) from None
    return im


def _unreadable(raw: bytes) -> ImageRejected:
    # Where Pillow gives up varies by plugin (a bad PNG CRC fails open(), bad pixels fail load()),
    # so the signature decides: our format but broken is 400, anything else is 415.
    if raw.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or raw[8:12] == b"WEBP":
        return ImageRejected(400, f"The image is corrupt or truncated; send a complete {ACCEPTED} "
                                  "file.")
    return ImageRejected(415, f"Not an accepted image: send {ACCEPTED} (SVG, GIF and other "
                              "formats are refused).")


def _open(raw: bytes, max_pixels: int, max_dimension: int) -> ImageFile.ImageFile:
    # formats= keeps every other Pillow plugin (TIFF, BMP, EPS, ...) away from untrusted bytes.
    im = Image.open(io.BytesIO(raw), formats=["JPEG", "PNG", "WEBP"])
    # Per-call limit, checked from the header; Image.MAX_IMAGE_PIXELS is process-global. A JPEG is decoded
    # at 1/2..1/8 scale (draft), so its full size costs little; a PNG or WebP is decoded whole, and a 40 KB
    # PNG of 6300 x 6300 cost 1.5-2 s of CPU: those may have no more pixels than what we keep of them.
    limit = max_pixels if im.format in ("JPEG", "MPO") else min(max_pixels, max_dimension * max_dimension)
    if im.width * im.height > limit:
        raise _too_many_pixels(limit, im.format)
    return im


def _too_many_pixels(max_pixels: int, fmt: str | None = None) -> ImageRejected:
    hint = " for PNG and WebP (a JPEG may be larger)" if fmt in ("PNG", "WEBP") else ""
    return ImageRejected(413, f"The image dimensions are too large: at most {max_pixels:,} pixels{hint}.")


def _normalise(im: Image.Image, *, alpha_allowed: bool) -> Image.Image:
    """Upright, sRGB, RGB or RGBA, with no metadata left to leak into the saved file."""
    icc = im.info.get("icc_profile")
    im = _upright(im)
    if im.mode.startswith("I"):
        # 16-bit greyscale PNG: a plain convert() clips to white, so scale to 8 bits first.
        im = im.convert("I").point(lambda v: v / 256).convert("L")
    alpha = alpha_allowed and im.has_transparency_data
    target = "RGBA" if alpha else "RGB"
    if im.mode not in ("RGB", "RGBA", "CMYK", "L"):
        im = im.convert(target)  # P, LA, 1, ...: ImageCms cannot transform them
    im = _to_srgb(im, icc, target)
    im = im.convert(target) if im.mode != target else im.copy()
    # Savers read some keys from .info (JPEG "comment", PNG "icc_profile"): start from nothing.
    im.info = {}
    return im


def _upright(im: Image.Image) -> Image.Image:
    # The orientation tag is about to be dropped with the rest of EXIF, so apply it to the pixels.
    # Broken EXIF is common in the wild and not a reason to refuse a photo: keep it as stored.
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - bad EXIF raises SyntaxError, TypeError, struct.error...
        return im


def _to_srgb(im: Image.Image, icc: bytes | None, target: str) -> Image.Image:
    # The embedded profile is dropped (it is attacker-controlled bytes, may name the device, and
    # would be wrong after CMYK/grey -> RGB), so convert to sRGB first: Display P3 phone photos and
    # CMYK JPEGs keep their colours, as browsers read untagged images as sRGB.
    if not icc:
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, source, _SRGB, outputMode=target)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im  # unusable or mismatched profile: keep the pixel values as they are


def _encode(im: Image.Image, fmt: str, options: dict[str, object]) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **options)  # no exif=/icc_profile=/xmp= given: none is written
    return out.getvalue()


def _human(n: int) -> str:
    return f"{n / 1048576:g} MB" if n >= 1048576 else f"{n / 1024:g} KB"
