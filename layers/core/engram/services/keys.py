"""API keys: only a SHA-256 of each key is stored; the key maps to a tenant."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from engram.errors import Unauthorized
from engram.ports import ApiKeyStore

AUTH_SCHEMES = ("token", "bearer")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "eng_" + secrets.token_urlsafe(32)


def key_from_header(header: str | None) -> str:
    """The key from `Authorization: Token <key>` (or `Bearer <key>`)."""
    if not header:
        raise Unauthorized("missing Authorization header (use 'Authorization: Token <api key>')")
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() not in AUTH_SCHEMES or not key.strip():
        raise Unauthorized("Authorization header must be 'Token <api key>' or 'Bearer <api key>'")
    return key.strip()


@dataclass
class ApiKeyService:
    store: ApiKeyStore

    def register(self, key: str, tenant_id: str, label: str = "") -> None:
        self.store.put(hash_key(key), tenant_id, label)

    def create(self, tenant_id: str, label: str = "") -> str:
        key = new_api_key()
        self.register(key, tenant_id, label)
        return key

    def tenant_for_header(self, header: str | None) -> str:
        tenant = self.store.tenant_for(hash_key(key_from_header(header)))
        if tenant is None:
            raise Unauthorized("invalid API key")
        return tenant
