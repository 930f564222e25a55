"""MemOS knowledge bases (/v1): create/knowledgebase, delete/knowledgebase,
add/knowledgebase-file (JSON with URLs or base64, or a multipart form upload to the same
route, as MemOSClient's add_knowledgebase_file_form sends it: files in `file` parts, the
knowledge base in the query string), get/knowledgebase-file (by file ids, or a knowledge
base's files paged) and delete/knowledgebase-file. Models, the translator over
KnowledgeService and the Router are here; the services do the work
(services/knowledge.py)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel, Field, model_validator

from engram.api.auth import tenant_of
from engram.api.memos.models import Envelope, Request
from engram.api.openapi import BODY, INDEX, responses
from engram.errors import BadRequest, EngramError, Unprocessable
from engram.models.identifiers import Id
from engram.models.knowledge import KnowledgeBase, KnowledgeFile
from engram.services.attachments import is_http_url
from engram.services.knowledge import FileInput, KnowledgeService
from engram.services.url_policy import decode_base64, decode_data_url

FILE_ROUTE = "/add/knowledgebase-file"
FORM_MEDIA_TYPE = "multipart/form-data"
MAX_FILE_IDS = 100
MAX_FORM_FIELDS = 64

# --- models ---------------------------------------------------------------------------


class CreateKnowledgebaseRequest(Request):
    knowledgebase_name: str = Field(min_length=1, max_length=256)
    knowledgebase_description: str | None = Field(default=None, max_length=4000)


class KnowledgebaseData(BaseModel):
    id: str
    name: str
    description: str | None
    create_time: int


class KnowledgebaseIdRequest(Request):
    knowledgebase_id: Id


class DeletedData(BaseModel):
    success: bool = True
    deleted_files: int


class KnowledgebaseFileItem(BaseModel):
    """One file to add: `content` is an http(s) URL (fetched by Engram), a data: URL or
    base64. MemOS's `type: "skill"` (Skill packages) is not served: documents only."""

    model_config = {"extra": "ignore"}

    content: str = Field(min_length=1, description="An http(s) URL, a data: URL or base64")
    name: str | None = Field(default=None, max_length=256)
    type: Literal["document"] = "document"
    content_type: str | None = Field(default=None, max_length=256)


class AddKnowledgebaseFileRequest(Request):
    knowledgebase_id: Id
    file: list[KnowledgebaseFileItem] = Field(min_length=1)


class KnowledgebaseFileDetail(BaseModel):
    """A file and its processing state: running (being read), completed (its passages are
    searchable) or failed (`error` says why)."""

    id: str
    knowledgebase_id: str
    type: str
    name: str
    size: int  # bytes
    sizeMB: float  # noqa: N815 - MemOS's field name
    content_type: str | None
    kind: str | None
    status: str
    error: str | None
    pages: int | None
    passages: int
    create_time: int
    update_time: int


class GetKnowledgebaseFileRequest(Request):
    file_ids: list[Id] | None = Field(default=None, max_length=MAX_FILE_IDS)
    knowledgebase_id: Id | None = None
    type: Literal["document", "skill"] | None = None
    page: int | None = Field(default=None, ge=1)
    page_size: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _one_mode(self) -> GetKnowledgebaseFileRequest:
        if bool(self.file_ids) == bool(self.knowledgebase_id):
            raise ValueError("give exactly one of file_ids or knowledgebase_id")
        return self


class GetKnowledgebaseFileData(BaseModel):
    file_detail_list: list[KnowledgebaseFileDetail]
    total: int
    page: int
    page_size: int


class DeleteKnowledgebaseFileRequest(Request):
    file_ids: list[Id] = Field(min_length=1, max_length=MAX_FILE_IDS)


class DeletedFilesData(BaseModel):
    success: bool = True
    deleted: int


# --- the multipart form ---------------------------------------------------------------


def form_body(event: BaseProxyEvent) -> dict[str, Any] | None:
    """add/knowledgebase-file sent as multipart/form-data → the JSON body it stands for
    (each `file` part as base64 content), for the same validation; None for any other
    request. Parsed by python-multipart, as the local upload form is."""
    media = (event.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != FORM_MEDIA_TYPE or not event.path.endswith(FILE_ROUTE):
        return None
    # python-multipart: a dependency of both profiles (local, aws), imported here only
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import create_form_parser, parse_options_header

    raw = event.body or ""
    try:
        data = base64.b64decode(raw, validate=True) if event.is_base64_encoded \
            else raw.encode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        raise BadRequest("request body is not valid base64") from None
    files: list[Any] = []
    fields: dict[str, str] = {}

    def on_field(field: Any) -> None:
        if len(fields) >= MAX_FORM_FIELDS:
            raise Unprocessable(f"the form has more than {MAX_FORM_FIELDS} fields")
        name = (field.field_name or b"").decode("utf-8", "replace")
        fields[name] = (field.value or b"").decode("utf-8", "replace")

    content_type = event.headers.get("content-type") or ""
    _, params = parse_options_header(content_type)
    if not params.get(b"boundary"):
        raise BadRequest("the multipart/form-data body has no boundary")
    try:
        parser = create_form_parser({"Content-Type": content_type.encode("latin-1")},
                                    on_field, files.append,
                                    config={"MAX_MEMORY_FILE_SIZE": float("inf")})
        parser.write(data)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise BadRequest(f"the multipart/form-data body could not be parsed: {exc}") from None
    query = event.query_string_parameters or {}
    body: dict[str, Any] = {k: v for k, v in fields.items() if k in ("knowledgebase_id", "type")}
    body.update({k: v for k, v in query.items() if k in ("knowledgebase_id", "type")})
    kind = body.pop("type", None)
    items = []
    for part in files:
        if part.field_name != b"file":
            raise Unprocessable(f"form field {part.field_name!r}: files go in 'file' parts")
        item: dict[str, Any] = {
            "content": base64.b64encode(part.file_object.getvalue()).decode("ascii"),
            "name": (part.file_name or b"").decode("utf-8", "replace") or None,
            "content_type": part.content_type}
        if kind:
            item["type"] = kind
        items.append(item)
    body["file"] = items
    return body


def is_form_upload(event: BaseProxyEvent) -> bool:
    media = (event.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    return media == FORM_MEDIA_TYPE and event.path.endswith(FILE_ROUTE)


# --- translation ------------------------------------------------------------------------


def file_inputs(req: AddKnowledgebaseFileRequest, uploaded: bool) -> list[FileInput]:
    out = []
    for i, item in enumerate(req.file):
        where = f"file[{i}]"
        content, name = item.content.strip(), item.name or ""
        if uploaded:
            out.append(FileInput(where=where, name=name, content_type=item.content_type,
                                 data=base64.b64decode(content), source="upload"))
        elif is_http_url(content):
            out.append(FileInput(where=where, name=name, url=content,
                                 content_type=item.content_type))
        elif content[:5].lower() == "data:":
            data, content_type = decode_data_url(content, f"{where}.content")
            out.append(FileInput(where=where, name=name, data=data, source="base64",
                                 content_type=item.content_type or content_type))
        else:
            out.append(FileInput(where=where, name=name, source="base64",
                                 content_type=item.content_type,
                                 data=decode_base64(content, f"{where}.content")))
    return out


def file_detail(f: KnowledgeFile) -> KnowledgebaseFileDetail:
    return KnowledgebaseFileDetail(
        id=f.file_id, knowledgebase_id=f.knowledgebase_id, type=f.type, name=f.name,
        size=f.size, sizeMB=round(f.size / 2**20, 3), content_type=f.content_type,
        kind=f.kind, status=f.status, error=f.error, pages=f.pages,
        passages=len(f.passage_ids), create_time=f.create_time, update_time=f.update_time)


def base_data(base: KnowledgeBase) -> KnowledgebaseData:
    return KnowledgebaseData(id=base.knowledgebase_id, name=base.name,
                             description=base.description, create_time=base.create_time)


class KnowledgeUnavailable(EngramError):
    status_code = 501


@dataclass
class KnowledgeTranslator:
    knowledge: KnowledgeService | None

    @property
    def service(self) -> KnowledgeService:
        if self.knowledge is None:
            raise KnowledgeUnavailable("knowledge bases are not served by this deployment")
        return self.knowledge

    def create(self, tenant_id: str, req: CreateKnowledgebaseRequest) -> KnowledgebaseData:
        return base_data(self.service.create(tenant_id, req.knowledgebase_name,
                                             req.knowledgebase_description))

    def delete(self, tenant_id: str, req: KnowledgebaseIdRequest) -> DeletedData:
        return DeletedData(deleted_files=self.service.delete(tenant_id, req.knowledgebase_id))

    def add_files(self, tenant_id: str, req: AddKnowledgebaseFileRequest,
                  uploaded: bool) -> list[KnowledgebaseFileDetail]:
        files = self.service.add_files(tenant_id, req.knowledgebase_id,
                                       file_inputs(req, uploaded))
        return [file_detail(f) for f in files]

    def get_files(self, tenant_id: str, req: GetKnowledgebaseFileRequest
                  ) -> GetKnowledgebaseFileData:
        page, size = req.page or 1, req.page_size or 20
        if req.file_ids:
            files = self.service.files(tenant_id, req.file_ids)
            return GetKnowledgebaseFileData(file_detail_list=[file_detail(f) for f in files],
                                            total=len(files), page=1, page_size=len(files))
        assert req.knowledgebase_id is not None
        files = self.service.list_files(tenant_id, req.knowledgebase_id)
        if req.type is not None:
            files = [f for f in files if f.type == req.type]
        shown = files[(page - 1) * size:page * size]
        return GetKnowledgebaseFileData(file_detail_list=[file_detail(f) for f in shown],
                                        total=len(files), page=page, page_size=size)

    def delete_files(self, tenant_id: str, req: DeleteKnowledgebaseFileRequest
                     ) -> DeletedFilesData:
        return DeletedFilesData(deleted=self.service.delete_files(tenant_id, req.file_ids))


# --- routes -----------------------------------------------------------------------------


def knowledge_router(kb: KnowledgeTranslator) -> Router:
    router = Router()

    @router.post("/create/knowledgebase", summary="Create a knowledge base",
                 responses=responses(*BODY, 501))
    def create_knowledgebase(req: Annotated[CreateKnowledgebaseRequest, Body()]
                             ) -> Envelope[KnowledgebaseData]:
        return Envelope(data=kb.create(tenant_of(router), req))

    @router.post("/delete/knowledgebase",
                 summary="Delete a knowledge base: its files, passages and index rows",
                 responses=responses(*BODY, 404, 501, INDEX))
    def delete_knowledgebase(req: Annotated[KnowledgebaseIdRequest, Body()]
                             ) -> Envelope[DeletedData]:
        return Envelope(data=kb.delete(tenant_of(router), req))

    @router.post(FILE_ROUTE,
                 summary="Add files to a knowledge base (JSON: URLs or base64; or a "
                         "multipart/form-data upload with ?knowledgebase_id=)",
                 description="The same route takes multipart/form-data (file parts named "
                             "`file`, `knowledgebase_id` in the query string), as MemOS's "
                             "client uploads local files. Each file is read before the "
                             "answer: PDF, DOCX, DOC, TXT, MD and HTML, at most 20 files, "
                             "100 MB and 200 pages each (413 naming the limit).",
                 responses=responses(*BODY, 404, 413, 501, INDEX))
    def add_knowledgebase_file(req: Annotated[AddKnowledgebaseFileRequest, Body()]
                               ) -> Envelope[list[KnowledgebaseFileDetail]]:
        uploaded = is_form_upload(router.current_event)
        return Envelope(data=kb.add_files(tenant_of(router), req, uploaded))

    @router.post("/get/knowledgebase-file",
                 summary="Files by id, or a knowledge base's files (paged), with their state",
                 responses=responses(*BODY, 404, 501))
    def get_knowledgebase_file(req: Annotated[GetKnowledgebaseFileRequest, Body()]
                               ) -> Envelope[GetKnowledgebaseFileData]:
        return Envelope(data=kb.get_files(tenant_of(router), req))

    @router.post("/delete/knowledgebase-file",
                 summary="Delete files: their passages, index rows and stored bytes",
                 responses=responses(*BODY, 404, 501, INDEX))
    def delete_knowledgebase_file(req: Annotated[DeleteKnowledgebaseFileRequest, Body()]
                                  ) -> Envelope[DeletedFilesData]:
        return Envelope(data=kb.delete_files(tenant_of(router), req))

    return router
