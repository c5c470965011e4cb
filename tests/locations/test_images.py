"""locations.images: uploaded images are verified, bounded, re-encoded and stripped. No database."""

from __future__ import annotations

import io
import re
import struct
import time
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps
from PIL.PngImagePlugin import PngInfo

from locations.images import (
    DEFAULT_MAX_BYTES,
    ImageRejected,
    ProcessedImage,
    image_process,
    storage_name,
)

MB = 1024 * 1024


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **options)
    return out.getvalue()


def process(raw: bytes, **kwargs: object) -> ProcessedImage:
    kwargs.setdefault("max_bytes", DEFAULT_MAX_BYTES)
    return image_process(data=io.BytesIO(raw), **kwargs)


def rejected(raw: bytes, **kwargs: object) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        process(raw, **kwargs)
    return info.value


def reopen(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    return exif


# --- accepted formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [("JPEG", "image/jpeg", "jpg"), ("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")],
)
def test_accepted_formats_are_re_encoded_in_their_own_format(fmt, content_type, extension):
    raw = encode(Image.new("RGB", (120, 80), (200, 30, 30)), fmt)

    result = process(raw)

    assert (result.content_type, result.extension) == (content_type, extension)
    assert (result.width, result.height) == (120, 80)
    out = reopen(result.content)
    assert (out.format, out.size, out.mode) == (fmt, (120, 80), "RGB")
    assert reopen(result.thumbnail).format == fmt


def test_multi_picture_jpeg_is_stored_as_a_plain_jpeg():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue")]
    raw = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert reopen(raw).format == "MPO"
    result = process(raw)
    assert (result.content_type, reopen(result.content).format) == ("image/jpeg", "JPEG")


def test_animated_webp_keeps_its_first_frame_only():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue")]
    out = reopen(process(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])).content)
    assert getattr(out, "n_frames", 1) == 1 and out.getpixel((0, 0))[0] > 200


def test_jpeg_is_saved_progressive():
    result = process(encode(Image.new("RGB", (64, 64), "navy"), "JPEG"))
    assert reopen(result.content).info.get("progressive") == 1


def test_data_appended_after_the_image_does_not_survive():
    # A JPEG/HTML polyglot: the trailing payload must not reach storage.
    raw = encode(Image.new("RGB", (32, 32), "green"), "JPEG") + b"<html><script>alert(1)</script>"
    result = process(raw)
    assert b"<script>" not in result.content


# --- metadata ---------------------------------------------------------------------------------


def test_jpeg_exif_with_gps_is_stripped():
    raw = encode(Image.new("RGB", (100, 60), "white"), "JPEG", exif=gps_exif(), comment=b"secret")
    assert reopen(raw).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture does carry GPS

    result = process(raw)

    for data in (result.content, result.thumbnail):
        out = reopen(data)
        assert not out.getexif()
        assert not out.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "exif" not in out.info and "comment" not in out.info
        assert b"Exif" not in data and b"PhoneMaker" not in data and b"secret" not in data


def test_png_exif_text_chunks_and_icc_are_stripped():
    text = PngInfo()
    text.add_text("Author", "Jane Doe")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>private</x:xmpmeta>")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    raw = encode(Image.new("RGBA", (50, 50), (0, 0, 255, 128)), "PNG",
                 pnginfo=text, exif=gps_exif(), icc_profile=icc)

    result = process(raw)

    out = reopen(result.content)
    assert not out.getexif()
    assert not {"Author", "XML:com.adobe.xmp", "exif", "icc_profile"} & set(out.info)
    assert b"Jane Doe" not in result.content and b"xmpmeta" not in result.content
    assert out.getpixel((0, 0)) == (0, 0, 255, 128)  # colours survive the sRGB conversion


def test_webp_exif_is_stripped():
    raw = encode(Image.new("RGB", (40, 40), "red"), "WEBP", exif=gps_exif())
    assert reopen(raw).getexif()

    out = reopen(process(raw).content)

    assert not out.getexif() and "exif" not in out.info


def test_exif_orientation_is_applied_before_it_is_dropped():
    # Stored 40x20 with the left half red; orientation 6 means "rotate 90° clockwise to display",
    # so the upright image is 20x40 with the red half on top.
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    raw = encode(im, "JPEG", exif=exif, quality=95)

    result = process(raw)

    out = reopen(result.content)
    assert (result.width, result.height) == out.size == (20, 40)
    top, bottom = out.getpixel((10, 5)), out.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60
    assert ExifTags.Base.Orientation not in out.getexif()


def test_broken_exif_does_not_refuse_the_photo_and_is_dropped():
    exif = gps_exif()
    exif[ExifTags.Base.Orientation] = 6
    raw = encode(Image.new("RGB", (30, 20), "white"), "WEBP", exif=exif)
    raw = raw.replace(b"MM\x00*", b"MMG*", 1)  # the TIFF header of the EXIF block
    with pytest.raises(SyntaxError):  # what Pillow does with it on its own
        ImageOps.exif_transpose(reopen(raw))

    result = process(raw)

    assert (result.width, result.height) == (30, 20)
    assert b"Exif" not in result.content and b"PhoneMaker" not in result.content


# --- modes ------------------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb():
    raw = encode(Image.new("CMYK", (30, 30), (0, 255, 255, 0)), "JPEG")
    out = reopen(process(raw).content)
    assert out.mode == "RGB"
    r, g, b = out.getpixel((15, 15))
    assert r > 200 and g < 60 and b < 60


def test_palette_png_with_transparency_keeps_it_as_rgba():
    im = Image.new("P", (20, 20), 1)
    im.putpalette([0, 0, 0, 255, 0, 0])
    im.info["transparency"] = 0
    im.paste(0, (0, 0, 10, 20))
    out = reopen(process(encode(im, "PNG", transparency=0)).content)
    assert out.mode == "RGBA"
    assert out.getpixel((2, 2))[3] == 0 and out.getpixel((15, 2)) == (255, 0, 0, 255)


def test_greyscale_alpha_png_becomes_rgba():
    out = reopen(process(encode(Image.new("LA", (10, 10), (100, 50)), "PNG")).content)
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (100, 100, 100, 50)


def test_16_bit_greyscale_png_is_scaled_not_clipped_to_white():
    out = reopen(process(encode(Image.new("I;16", (10, 10), 30000), "PNG")).content)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (117, 117, 117)


def test_webp_with_alpha_keeps_it():
    raw = encode(Image.new("RGBA", (10, 10), (0, 255, 0, 0)), "WEBP", lossless=True)
    assert reopen(process(raw).content).mode == "RGBA"


# --- refused ----------------------------------------------------------------------------------

SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(SVG, id="svg"),
        pytest.param(encode(Image.new("P", (10, 10)), "GIF"), id="gif"),
        pytest.param(encode(Image.new("RGB", (10, 10)), "BMP"), id="bmp"),
        pytest.param(encode(Image.new("RGB", (10, 10)), "TIFF"), id="tiff"),
        pytest.param(encode(Image.new("RGB", (10, 10)), "PDF"), id="pdf"),
        pytest.param(b"<!doctype html><html><body>hi</body></html>", id="html"),
        pytest.param(b"just some text\n", id="text"),
    ],
)
def test_anything_but_jpeg_png_webp_is_refused_with_415(raw):
    error = rejected(raw)
    assert error.status == 415
    assert "JPEG, PNG or WebP" in error.reason and "SVG" in error.reason


def test_truncated_jpeg_is_refused_with_400():
    raw = encode(Image.effect_noise((200, 200), 64).convert("RGB"), "JPEG")
    error = rejected(raw[: len(raw) // 2])
    assert error.status == 400 and "truncated" in error.reason


def test_png_signature_followed_by_garbage_is_refused_with_400():
    error = rejected(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    assert error.status == 400 and "corrupt" in error.reason and "JPEG, PNG or WebP" in error.reason


def test_png_with_valid_header_and_garbage_pixels_is_refused_with_400():
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
    raw = b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", b"not zlib at all") + png_chunk(b"IEND", b"")
    error = rejected(raw)
    assert error.status == 400 and "corrupt" in error.reason


def test_png_with_bad_crc_is_refused_by_verify():
    raw = bytearray(encode(Image.new("RGB", (10, 10), "red"), "PNG"))
    raw[29] ^= 0xFF  # last byte of the IHDR CRC
    assert rejected(bytes(raw)).status == 400


def test_empty_file_is_refused_with_400():
    error = rejected(b"")
    assert error.status == 400 and "empty" in error.reason


# --- size limits ------------------------------------------------------------------------------


class EndlessStream(io.RawIOBase):
    """An upload that never ends; fails the test if read past `allowed` bytes."""

    def __init__(self, allowed: int, chunk: int | None = None) -> None:
        self.allowed, self.chunk, self.consumed = allowed, chunk, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size >= 0, "unbounded read"
        if self.chunk:
            size = min(size, self.chunk)  # short reads, as sockets do
        self.consumed += size
        assert self.consumed <= self.allowed, f"read {self.consumed} bytes, allowed {self.allowed}"
        return b"\xff" * size


@pytest.mark.parametrize("chunk", [None, 4096])
def test_over_max_bytes_is_413_without_reading_the_rest(chunk):
    stream = EndlessStream(allowed=MB + 1, chunk=chunk)
    with pytest.raises(ImageRejected) as info:
        image_process(data=stream, max_bytes=MB)
    assert info.value.status == 413 and "at most 1 MB" in info.value.reason
    assert stream.consumed == MB + 1


def test_default_limit_is_5_mb_in_the_message():
    with pytest.raises(ImageRejected) as info:
        image_process(data=EndlessStream(DEFAULT_MAX_BYTES + 1), max_bytes=DEFAULT_MAX_BYTES)
    assert DEFAULT_MAX_BYTES == 5 * MB and "at most 5 MB" in info.value.reason


def test_an_image_of_exactly_max_bytes_is_accepted():
    raw = encode(Image.new("RGB", (20, 20), "red"), "PNG")
    assert process(raw, max_bytes=len(raw)).width == 20
    assert rejected(raw, max_bytes=len(raw) - 1).status == 413


def bomb_png(width: int, height: int) -> bytes:
    """A real, valid single-colour greyscale PNG: tiny on disk, width*height bytes once decoded."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    packer, row = zlib.compressobj(9), b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def patched_png(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims width x height (CRC fixed, so only the size is a lie)."""
    raw = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = png_chunk(b"IHDR", struct.pack(">II", width, height) + raw[24:29])
    return raw[:8] + ihdr + raw[33:]


def test_decompression_bomb_above_our_limit_is_refused_fast():
    raw = bomb_png(8000, 8000)  # 64 Mpx: above max_pixels, below Pillow's own warning threshold
    assert len(raw) < 200_000
    started = time.perf_counter()
    error = rejected(raw)
    assert time.perf_counter() - started < 0.5
    assert error.status == 413 and "dimensions" in error.reason


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_png_or_webp_with_more_pixels_than_we_keep_is_refused_before_decoding(fmt):
    if fmt == "PNG":
        raw = bomb_png(6300, 6300)  # 40 KB on disk, 39.7 Mpx: under the JPEG limit, 1.5-2 s to decode
        assert len(raw) < 100_000
    else:
        raw = patched_webp(6300, 6300)
    error = rejected(raw)
    assert error.status == 413 and "PNG and WebP" in error.reason
    assert process(encode(Image.new("RGB", (300, 200), "red"), fmt), max_dimension=400).width == 300


def patched_webp(width: int, height: int) -> bytes:
    """A lossless WebP whose header claims width x height."""
    raw = _lossless_webp(Image.new("RGB", (4, 4), "blue"))
    assert raw[12:16] == b"VP8L" and raw[20] == 0x2F  # the 14-bit width and height follow the signature
    bits = (width - 1) | ((height - 1) << 14)
    return raw[:21] + bits.to_bytes(4, "little")[:4] + raw[25:]


def _lossless_webp(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="WEBP", lossless=True)
    return out.getvalue()


def test_header_claiming_20000x20000_is_refused_fast():
    started = time.perf_counter()
    error = rejected(patched_png(20000, 20000))
    assert time.perf_counter() - started < 0.5
    assert error.status == 413 and "dimensions" in error.reason


def test_max_pixels_is_per_call_and_leaves_pillow_global_alone():
    before = Image.MAX_IMAGE_PIXELS
    raw = encode(Image.new("RGB", (100, 100)), "PNG")
    assert rejected(raw, max_pixels=9_999).status == 413
    assert process(raw, max_pixels=10_000).width == 100
    assert Image.MAX_IMAGE_PIXELS == before


# --- dimensions and thumbnail -----------------------------------------------------------------


def test_large_image_is_downscaled_to_max_dimension():
    result = process(encode(Image.new("RGB", (400, 200), "red"), "JPEG"), max_dimension=100)
    assert (result.width, result.height) == reopen(result.content).size == (100, 50)


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1000, 500), (320, 320), (320, 160)),
        ((500, 1000), (320, 320), (160, 320)),
        ((100, 50), (320, 320), (100, 50)),  # never upscaled
        ((1000, 500), (64, 64), (64, 32)),
    ],
)
def test_thumbnail_fits_the_box_and_keeps_aspect_ratio(size, box, expected):
    result = process(encode(Image.new("RGB", size, "teal"), "PNG"), thumbnail_size=box)
    assert reopen(result.thumbnail).size == expected
    assert (result.width, result.height) == size


# --- storage names ----------------------------------------------------------------------------


def test_storage_name_shape():
    name = storage_name(prefix="logos", extension="png")
    assert re.fullmatch(r"logos/20\d\d/(0[1-9]|1[0-2])/[0-9a-f]{32}\.png", name)
    assert storage_name(prefix="/photos/", extension=".jpg").startswith("photos/")


def test_storage_names_are_unique():
    names = {storage_name(prefix="photos", extension="jpg") for _ in range(2000)}
    assert len(names) == 2000
