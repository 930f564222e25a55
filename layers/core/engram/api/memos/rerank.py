"""rerank (/v1): the given documents ordered for a query by Engram's own scoring (the
embedding model's cosine fused with BM25, as search scores memories). The answer has the
shape of MemOS's "Rerank Memory" reference (`results[].index`, `.document.text`,
`.relevance_score`, with `id`, `model`, `usage`), plus the envelope's `code` and
`message`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, Field, StrictStr, model_validator

from engram.api.auth import tenant_of
from engram.api.memos.models import Request
from engram.api.openapi import BODY, responses
from engram.services.rerank import RerankService

MAX_DOCUMENTS = 100
MAX_DOCUMENT_CHARS = 8_000
# MemOS caps the documents at 8k tokens in all; Engram counts characters (~4 a token).
MAX_TOTAL_CHARS = 32_000


class RerankRequest(Request):
    query: str = Field(min_length=1, max_length=4_000)
    documents: list[Annotated[StrictStr, Field(max_length=MAX_DOCUMENT_CHARS)]] = Field(
        min_length=1, max_length=MAX_DOCUMENTS,
        description=f"At most {MAX_DOCUMENTS} documents of at most {MAX_DOCUMENT_CHARS} "
                    f"characters, {MAX_TOTAL_CHARS} in all")
    model: str | None = Field(default=None, max_length=128, description=(
        "Accepted for MemOS's client (memos-reranker-*); Engram always scores with its "
        "embedding model and BM25, and answers with that model's name"))
    top_n: int | None = Field(default=None, ge=1, description="Only the best N (default all)")

    @model_validator(mode="after")
    def _within_size(self) -> RerankRequest:
        total = sum(len(d) for d in self.documents)
        if total > MAX_TOTAL_CHARS:
            raise ValueError(f"documents: {total} characters in all; the limit is "
                             f"{MAX_TOTAL_CHARS} (about 8k tokens)")
        return self


class RerankDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int  # into the request's documents
    document: RerankDocument
    relevance_score: float  # in [0, 1]


class RerankUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(BaseModel):
    code: int = 0
    message: str = "ok"
    id: str
    model: str
    usage: RerankUsage
    results: list[RerankResult]


@dataclass
class RerankTranslator:
    service: RerankService

    def rerank(self, req: RerankRequest) -> RerankResponse:
        from engram.retrieval.lexical import tokenize  # the lexical rules: not at cold start

        ranked = self.service.rerank(req.query, req.documents, req.top_n)
        # Terms as the lexical index counts them: the nearest thing to tokens here.
        tokens = sum(len(tokenize(t)) for t in (req.query, *req.documents))
        return RerankResponse(
            id=f"rerank-{uuid.uuid4().hex}", model=self.service.embedder.model_name,
            usage=RerankUsage(prompt_tokens=tokens, total_tokens=tokens),
            results=[RerankResult(index=i, document=RerankDocument(text=req.documents[i]),
                                  relevance_score=score) for i, score in ranked])


def rerank_router(rerank: RerankTranslator) -> Router:
    router = Router()

    @router.post("/rerank", summary="Order documents for a query by Engram's scoring",
                 responses=responses(*BODY))
    def rerank_documents(req: Annotated[RerankRequest, Body()]) -> RerankResponse:
        tenant_of(router)  # a tenant's key is needed, though nothing of its data is read
        return rerank.rerank(req)

    return router
