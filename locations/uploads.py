"""Services for uploaded files: CPO logos and location photos, re-encoded and stored by server name."""

from __future__ import annotations

import re
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from locations.images import ImageRejected, ProcessedImage, image_process, storage_name
from locations.models import Cpo, Location, Photo

__all__ = ["ImageRejected", "cpo_logo_set", "is_logo_storage_name", "logo_store", "photo_add", "photo_replace",
           "storage_url"]

LOGO_PREFIX = "logos"
# Exactly what `storage_name` makes: no `.`, `//` or directory can pass for another CPO's file.
_LOGO_NAME = re.compile(rf"{LOGO_PREFIX}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.(?:jpg|jpeg|png|webp)")
PHOTO_PREFIX = "photos"
MAX_PHOTOS_PER_REQUEST = 5


def _store(image: ProcessedImage, prefix: str) -> tuple[str, str]:
    name = default_storage.save(storage_name(prefix=prefix, extension=image.extension), ContentFile(image.content))
    thumb_name = name.rsplit(".", 1)[0] + f".thumb.{image.extension}"
    thumb = default_storage.save(thumb_name, ContentFile(image.thumbnail))
    return name, thumb


def _process(file: BinaryIO) -> ProcessedImage:
    return image_process(data=file, max_bytes=settings.UPLOAD_MAX_BYTES)


def logo_store(*, file: BinaryIO) -> str:
    """Store an uploaded logo (before or after registration); returns its storage name."""
    name, _thumb = _store(_process(file), LOGO_PREFIX)
    return name


def is_logo_storage_name(name: str) -> bool:
    return isinstance(name, str) and _LOGO_NAME.fullmatch(name) is not None


def cpo_logo_set(*, cpo: Cpo, logo: str) -> Cpo:
    """Point the CPO at an uploaded logo (by storage name); one CPO's logo cannot be claimed by another."""
    if not is_logo_storage_name(logo) or not default_storage.exists(logo):
        raise ValueError(f"no uploaded logo is named {logo!r}: upload it first")
    if Cpo.objects.filter(logo=logo).exclude(pk=cpo.pk).exists():
        raise ValueError(f"the logo {logo!r} belongs to another CPO")
    cpo.logo = logo
    cpo.save(update_fields=["logo", "date_modified"])
    return cpo


def photo_add(*, location: Location, files: list[BinaryIO]) -> list[Photo]:
    """Add 1 to 5 photos to a location; all are verified before any is stored."""
    if not 1 <= len(files) <= MAX_PHOTOS_PER_REQUEST:
        raise ValueError(f"send 1 to {MAX_PHOTOS_PER_REQUEST} photos per request, not {len(files)}")
    images = [_process(file) for file in files]
    photos = []
    with transaction.atomic():
        for image in images:
            name, thumb = _store(image, PHOTO_PREFIX)
            photos.append(Photo.objects.create(
                location=location, image=name, thumbnail=thumb, content_type=image.content_type,
                width=image.width, height=image.height,
            ))
    return photos


def photo_replace(*, photo: Photo, file: BinaryIO) -> Photo:
    image = _process(file)
    old = [photo.image, photo.thumbnail]
    photo.image, photo.thumbnail = _store(image, PHOTO_PREFIX)
    photo.content_type, photo.width, photo.height = image.content_type, image.width, image.height
    photo.save()
    transaction.on_commit(lambda: [default_storage.delete(name) for name in old if name])
    return photo


def storage_url(name: str) -> str:
    if not name:
        return ""
    url = default_storage.url(name)
    return url if url.startswith("http") else f"{settings.PUBLIC_BASE_URL}{url}"
