"""CPO logos as portal clients name them.

The contract's upload (`POST /ocpi/cpo/2.2/cpo/upload`, key `cpo_logo`) answers `data: []`, so a client
knows its logo by the name of the file it uploaded: register's `"logo": "cpo-logo.png"` and the logo
update's `{"logo": "filename.png"}` name it so. Each upload is recorded with its uploader (a front end's
key, or a CPO user's session) and a name resolves to that caller's own latest upload of that name:

* register (Basic): the uploads of that client key;
* logo update (Bearer): the CPO's own uploads, then those of the front end its user logged in through.

An upload that another CPO already uses is never given out. The storage name an upload also returns
(`file_name` beside `data`, header `X-File-Name`) names its file directly, as before.
"""

from __future__ import annotations

from typing import BinaryIO

from django.db.models import Q

from emsp.models import LogoUpload, PortalClient
from locations import uploads
from locations.models import Cpo

NAME_MAX = 255


def logo_upload(*, file: BinaryIO, client: PortalClient | None = None, cpo: Cpo | None = None) -> LogoUpload:
    """Verify and store an uploaded logo, and remember who uploaded it under which name."""
    storage_name = uploads.logo_store(file=file)
    file_name = (getattr(file, "name", "") or "").rsplit("/", 1)[-1][:NAME_MAX]
    return LogoUpload.objects.create(file_name=file_name, storage_name=storage_name, client=client, cpo=cpo)


def logo_resolve(*, logo: str, client: PortalClient | None = None, cpo: Cpo | None = None) -> str:
    """The storage name that `logo` means to this caller; ValueError naming what to do when none."""
    if uploads.is_logo_storage_name(logo):
        return logo
    in_use = Cpo.objects.exclude(logo="")
    if cpo is not None:
        in_use = in_use.exclude(pk=cpo.pk)
    candidates = LogoUpload.objects.filter(file_name=logo).exclude(storage_name__in=in_use.values("logo"))
    for owner in (Q(cpo=cpo) if cpo is not None else None, Q(client=client) if client is not None else None):
        if owner is None:
            continue
        found = candidates.filter(owner).order_by("-uploaded_at", "-pk").values_list("storage_name", flat=True).first()
        if found:
            return found
    raise ValueError(f"no logo named {logo!r} was uploaded by you: upload it first "
                     "(POST /ocpi/cpo/2.2/cpo/upload, multipart key cpo_logo)")


def cpo_logo_use(*, cpo: Cpo, logo: str, client: PortalClient | None = None) -> Cpo:
    """Point `cpo` at the logo its caller names (a file name it uploaded, or a storage name)."""
    return uploads.cpo_logo_set(cpo=cpo, logo=logo_resolve(logo=logo, client=client, cpo=cpo))
