"""The services one API instance serves, built by a profile (local or AWS)."""

from __future__ import annotations

from dataclasses import dataclass

from engram.services.ingest import IngestService
from engram.services.keys import ApiKeyService
from engram.services.memories import MemoryService
from engram.services.search import SearchService
from engram.services.tasks import TaskService
from engram.services.uploads import UploadService


@dataclass
class Services:
    ingest: IngestService
    search: SearchService
    memories: MemoryService
    tasks: TaskService
    keys: ApiKeyService
    uploads: UploadService  # object/sign, and the object keys adds name
