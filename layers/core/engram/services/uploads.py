"""Direct uploads: `object/sign` hands out pre-signed POST forms, one per file, for keys
under the tenant's prefix; an add that names a key is checked against the tenant and
the object store before it is accepted."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from engram.config import Limits
from engram.errors import Forbidden, NotFound
from engram.models.content import guess_content_type, size_class
from engram.models.pipeline import segment, upload_prefix
from engram.models.requests import SignedFile
from engram.ports import ObjectInfo, ObjectStore, UploadSigner

INBOX_PREFIX = "inbox/"  # the AWS inbox: inbox/<tenant>/<user>/<file>
ANONYMOUS = "anon"  # the folder of uploads signed without a userId (the SDK sends none)
MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """The last path segment of a client's file name, reduced to [A-Za-z0-9._-], with its
    extension kept (it decides the content type)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext)[:16]
    stem = _UNSAFE.sub("_", stem).strip("._") or "file"
    stem = stem[:MAX_NAME_CHARS - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


@dataclass
class UploadService:
    signer: UploadSigner
    objects: ObjectStore
    limits: Limits

    def max_bytes(self, kind: str) -> int:
        return {"image": self.limits.max_image_bytes, "media": self.limits.max_media_bytes,
                "document": self.limits.max_document_bytes}[kind]

    def sign(self, tenant_id: str, user_id: str | None, file_name: str, kind: str
             ) -> SignedFile:
        """An upload form for one file (`kind`: image, file or video) under a fresh key
        in the user's upload folder (without a user, the tenant's shared one)."""
        folder = f"{upload_prefix(tenant_id)}{segment(user_id) if user_id else ANONYMOUS}"
        name = safe_file_name(file_name)
        content_type = guess_content_type(name)
        size = "media" if kind == "video" else size_class(
            "image" if kind == "image" else "file", content_type)
        max_bytes = self.max_bytes(size)
        key = f"{folder}/{uuid.uuid4().hex}/{name}"
        form = self.signer.sign(key, content_type, max_bytes, self.limits.upload_expiry_seconds)
        return SignedFile(key=key, url=form.url, fields=form.fields, max_bytes=max_bytes)

    def check_key(self, tenant_id: str, key: str, where: str) -> ObjectInfo:
        """An uploaded object of this tenant (through object/sign, or put in its AWS inbox),
        or a 403 (another tenant's key, or not an upload key) / 404 (never uploaded)."""
        mine = (upload_prefix(tenant_id), f"{INBOX_PREFIX}{tenant_id}/")
        if not key.startswith(mine) or ".." in key.split("/"):
            raise Forbidden(f"{where}: {key!r} is not an object key of this API key's "
                            "tenant (use the objectKey that POST /api/v1/object/sign returned)")
        info = self.objects.head(key)
        if info is None:
            raise NotFound(f"{where}: nothing was uploaded under the object key {key!r} "
                           "(upload the file to objectSignedInfo.url first)")
        return info
