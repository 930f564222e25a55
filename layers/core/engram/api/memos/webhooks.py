"""Engram's own webhook routes (/v1/webhooks), in the MemOS envelope: register, list,
read, change, delete, and the deliveries of one (delivered / failed after retries)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from engram.api.auth import tenant_of
from engram.api.memos.models import Envelope
from engram.api.openapi import BODY, PARAMS, responses
from engram.api.params import PathId
from engram.container import Services
from engram.errors import Unprocessable
from engram.models.webhooks import EVENT_TYPES, DeliveryRecord, WebhookRecord
from engram.services.webhooks import WebhookService


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    name: str = Field(default="webhook", min_length=1, max_length=200)
    event_types: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES),
                                   description=f"any of {', '.join(EVENT_TYPES)}")


class WebhookChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    event_types: list[str] | None = Field(default=None, min_length=1,
                                          max_length=len(EVENT_TYPES))
    is_active: bool | None = None


class WebhookView(BaseModel):
    webhook_id: str
    name: str
    url: str
    event_types: list[str]
    is_active: bool
    secret: str | None = None  # only when created: the HMAC-SHA256 key of its signatures
    create_time: int
    update_time: int


def view(record: WebhookRecord, secret: bool = False) -> WebhookView:
    return WebhookView(**record.model_dump(exclude={"secret"}),
                       secret=record.secret if secret else None)


def webhooks_router(services: Services) -> Router:
    router = Router()

    def hooks() -> WebhookService:
        if services.webhooks is None:
            raise Unprocessable("webhooks are not served by this deployment")
        return services.webhooks

    @router.post("/webhooks", summary="Register a webhook (the secret is shown only here)",
                 responses=responses(*BODY))
    def create(req: Annotated[WebhookCreate, Body()]) -> Envelope[WebhookView]:
        record = hooks().create(tenant_of(router), req.name, req.url, req.event_types)
        return Envelope(data=view(record, secret=True))

    @router.get("/webhooks", summary="The tenant's webhooks", responses=responses(401))
    def list_all() -> Envelope[list[WebhookView]]:
        return Envelope(data=[view(r) for r in hooks().list(tenant_of(router))])

    @router.get("/webhooks/<webhook_id>", summary="One webhook",
                responses=responses(*PARAMS, 404))
    def get(webhook_id: PathId) -> Envelope[WebhookView]:
        return Envelope(data=view(hooks().get(tenant_of(router), webhook_id)))

    @router.put("/webhooks/<webhook_id>", summary="Change a webhook",
                responses=responses(*BODY, 404))
    def change(webhook_id: PathId, req: Annotated[WebhookChange, Body()]
               ) -> Envelope[WebhookView]:
        record = hooks().update(tenant_of(router), webhook_id, name=req.name, url=req.url,
                                event_types=req.event_types, is_active=req.is_active)
        return Envelope(data=view(record))

    @router.delete("/webhooks/<webhook_id>", summary="Delete a webhook",
                   responses=responses(*PARAMS, 404))
    def delete(webhook_id: PathId) -> Envelope[None]:
        hooks().delete(tenant_of(router), webhook_id)
        return Envelope(data=None)

    @router.get("/webhooks/<webhook_id>/deliveries",
                summary="A webhook's deliveries: delivered, or failed after the retries",
                responses=responses(*PARAMS, 404))
    def deliveries(webhook_id: PathId) -> Envelope[list[DeliveryRecord]]:
        return Envelope(data=hooks().deliveries(tenant_of(router), webhook_id))

    return router
