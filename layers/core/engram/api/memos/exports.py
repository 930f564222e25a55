"""export/memory and import/memory (/v1, in the MemOS envelope): a user's current memories
with their history, sources and info, a page at a time, and the same records written back
as they were (no extraction, no dedupe). `engram export` and `engram import` use them; the
records are the lines of the export file (models/exports.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, Field

from engram.api.auth import tenant_of
from engram.api.memos.models import Envelope, Request
from engram.api.openapi import BODY, INDEX, responses
from engram.errors import EngramError
from engram.models.domain import now_ms
from engram.models.exports import ExportedMemory, ExportHeader
from engram.models.identifiers import Id
from engram.services.exports import MAX_PAGE, ExportService

MAX_IMPORT_RECORDS = 200


class NotServed(EngramError):
    status_code = 501


class ExportMemoryRequest(Request):
    user_id: Id
    cursor: str | None = Field(default=None, max_length=2_000, description=(
        "next_cursor of the previous page; absent for the first page"))
    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description="Memories per page")


class ExportMemoryData(BaseModel):
    header: ExportHeader  # the export file's first line
    records: list[ExportedMemory]  # newest first
    next_cursor: str | None = None  # absent or null: the last page


class ImportMemoryRequest(Request):
    user_id: Id | None = Field(default=None, description=(
        "Import every record under this user (default: each record's own user_id)"))
    records: list[ExportedMemory] = Field(min_length=1, max_length=MAX_IMPORT_RECORDS)


class ImportMemoryData(BaseModel):
    success: bool = True
    written: list[str]  # memory ids stored, new or changed
    skipped: list[str]  # already stored as exported (an import run again)


@dataclass
class ExportTranslator:
    exports: ExportService | None

    def _service(self) -> ExportService:
        if self.exports is None:
            raise NotServed("export and import are not served by this deployment")
        return self.exports

    def export(self, tenant_id: str, req: ExportMemoryRequest) -> ExportMemoryData:
        page = self._service().page(tenant_id, req.user_id, req.cursor, req.limit)
        return ExportMemoryData(header=ExportHeader(user_id=req.user_id, exported_at=now_ms()),
                                records=page.records, next_cursor=page.next_cursor)

    def restore(self, tenant_id: str, req: ImportMemoryRequest) -> ImportMemoryData:
        done = self._service().restore(tenant_id, req.records, req.user_id)
        return ImportMemoryData(written=done.written, skipped=done.skipped)


def exports_router(translator: ExportTranslator) -> Router:
    router = Router()

    @router.post("/export/memory", summary="A user's current memories with history, paged",
                 responses=responses(*BODY, 501))
    def export_memory(req: Annotated[ExportMemoryRequest, Body()]
                      ) -> Envelope[ExportMemoryData]:
        return Envelope(data=translator.export(tenant_of(router), req))

    # 409: a record's memory id belongs to another user of the tenant
    @router.post("/import/memory", summary="Write exported memories back as they were",
                 responses=responses(*BODY, 409, 501, INDEX))
    def import_memory(req: Annotated[ImportMemoryRequest, Body()]
                      ) -> Envelope[ImportMemoryData]:
        return Envelope(data=translator.restore(tenant_of(router), req))

    return router
