"""extract/memory: run the deployment's extractor (the LLM's when one is configured, else
the rule-based one: the same one the pipeline runs) over messages and return the
candidate memories. Nothing is stored: no task, no message, no memory, no index row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engram.errors import BadGateway, LlmUnavailable, PermanentError, ServiceUnavailable
from engram.models.domain import MessageRecord, Role
from engram.ports import Extraction, Extractor

PREVIEW_ID = "extract-preview"  # the user and conversation the records name (never stored)


@dataclass
class ExtractionPreview:
    extractor: Extractor

    def extract(self, tenant_id: str,
                messages: Sequence[tuple[Role, str, int | None]]) -> Extraction:
        records = [MessageRecord(tenant_id=tenant_id, user_id=PREVIEW_ID,
                                 conversation_id=PREVIEW_ID, message_id=f"m{i}", seq=i,
                                 role=role, text=text, chat_time=chat_time)
                   for i, (role, text, chat_time) in enumerate(messages)]
        try:
            return self.extractor.extract(records)
        except LlmUnavailable as exc:
            raise ServiceUnavailable(f"extraction needs the LLM, which did not answer: "
                                     f"{exc.message}") from None
        except PermanentError as exc:
            raise BadGateway(exc.message) from None
