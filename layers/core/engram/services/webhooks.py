"""Webhooks and events: a tenant registers URLs for task completed / failed and memory
added / updated / deleted; each event is signed (HMAC-SHA256 with the webhook's own
secret over `<timestamp>.<body>`, the timestamp in `X-Engram-Timestamp`) and delivered in
the background with bounded retries, so no add ever waits on a receiver. Every event
also goes to the event bus when the profile has one (EventBridge on AWS).

The target URL passes the same SSRF policy as fetched files (services/url_policy.py):
checked when registered, and again on the resolved addresses at every delivery."""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engram.errors import NotFound, Unprocessable, WebhookRefused
from engram.models.domain import Memory, Task, TaskStatus, now_ms
from engram.models.webhooks import EVENT_TYPES, DeliveryRecord, Event, WebhookRecord
from engram.ports import DirectoryStore, EventBus, MemoryStore, WebhookTransport
from engram.services.url_policy import SsrfPolicy

log = logging.getLogger(__name__)

WEBHOOKS = "webhooks"  # directory collection: webhook_id → WebhookRecord
DELIVERIES = "webhook-deliveries"  # "<webhook_id>/<delivery_id>" → DeliveryRecord
MAX_WEBHOOKS = 20  # per tenant
SIGNATURE_HEADER = "X-Engram-Signature"
TIMESTAMP_HEADER = "X-Engram-Timestamp"
ALLOW_LIST_HINT = " (allow it with ENGRAM_FETCH_ALLOW_HOSTS)"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + body): what a receiver
    recomputes to check that the body came from Engram and is recent."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class DeliverySettings:
    attempts: int = 6  # tries per event and webhook before it is recorded as failed
    backoff_seconds: float = 5.0  # before retry n: backoff * 2**(n-1) (5 s … 80 s)
    timeout_seconds: float = 10.0
    workers: int = 4


class DeliveryPool:
    """Daemon worker threads: a delivery waiting out its backoff never holds up the
    process's exit (a ThreadPoolExecutor's threads are joined at exit)."""

    def __init__(self, workers: int):
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        for n in range(workers):
            threading.Thread(target=self._work, name=f"webhook-{n}", daemon=True).start()

    def submit(self, job: Callable[[], None]) -> None:
        with self._idle:
            self._pending += 1
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # noqa: BLE001 - a worker must outlive any one delivery
                log.exception("webhook delivery crashed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def drain(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


@dataclass
class WebhookService:
    store: DirectoryStore
    policy: SsrfPolicy
    transport: WebhookTransport
    memories: MemoryStore | None = None  # for the text of memories named by task events
    bus: EventBus | None = None
    settings: DeliverySettings = field(default_factory=DeliverySettings)
    _pool: DeliveryPool | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # --- registrations -------------------------------------------------------------
    def create(self, tenant_id: str, name: str, url: str, event_types: Sequence[str]
               ) -> WebhookRecord:
        if len(self.store.list_entries(tenant_id, WEBHOOKS)) >= MAX_WEBHOOKS:
            raise Unprocessable(f"a tenant has at most {MAX_WEBHOOKS} webhooks")
        record = WebhookRecord(name=name, url=self._checked_url(url),
                               event_types=checked_types(event_types),
                               secret="whsec_" + secrets.token_urlsafe(32))
        self._save(tenant_id, record)
        return record

    def list(self, tenant_id: str) -> list[WebhookRecord]:
        return sorted((WebhookRecord.model_validate_json(body)
                       for _, body in self.store.list_entries(tenant_id, WEBHOOKS)),
                      key=lambda w: (w.create_time, w.webhook_id))

    def get(self, tenant_id: str, webhook_id: str) -> WebhookRecord:
        body = self.store.get_entry(tenant_id, WEBHOOKS, webhook_id)
        if body is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return WebhookRecord.model_validate_json(body)

    def update(self, tenant_id: str, webhook_id: str, *, name: str | None = None,
               url: str | None = None, event_types: Sequence[str] | None = None,
               is_active: bool | None = None) -> WebhookRecord:
        record = self.get(tenant_id, webhook_id)
        if name is not None:
            record.name = name
        if url is not None:
            record.url = self._checked_url(url)
        if event_types is not None:
            record.event_types = checked_types(event_types)
        if is_active is not None:
            record.is_active = is_active
        record.update_time = now_ms()
        self._save(tenant_id, record)
        return record

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        self.get(tenant_id, webhook_id)
        self.store.delete_entry(tenant_id, WEBHOOKS, webhook_id)
        for key, _ in self.store.list_entries(tenant_id, DELIVERIES):
            if key.startswith(webhook_id + "/"):
                self.store.delete_entry(tenant_id, DELIVERIES, key)

    def deliveries(self, tenant_id: str, webhook_id: str) -> list[DeliveryRecord]:
        self.get(tenant_id, webhook_id)
        return sorted((DeliveryRecord.model_validate_json(body)
                       for key, body in self.store.list_entries(tenant_id, DELIVERIES)
                       if key.startswith(webhook_id + "/")), key=lambda d: d.update_time)

    def _save(self, tenant_id: str, record: WebhookRecord) -> None:
        self.store.put_entry(tenant_id, WEBHOOKS, record.webhook_id, record.model_dump_json())

    def _checked_url(self, url: str) -> str:
        refusal = self.policy.check_url(url)
        if refusal:
            hint = ALLOW_LIST_HINT if refusal.allow_listable else ""
            raise Unprocessable(f"url is refused: {refusal.reason}{hint}")
        return url.strip()

    # --- events ----------------------------------------------------------------------
    def task_done(self, task: Task) -> None:
        """A task ended (pipeline/steps.py): task.completed or task.failed, then one event
        per memory it added, updated or deleted."""
        try:
            self._task_done(task)
        except Exception:  # noqa: BLE001 - an event lost must never fail the task
            log.exception("events of task %s not published", task.task_id)

    def _task_done(self, task: Task) -> None:
        views = task.memory_views
        completed = task.status == TaskStatus.completed
        self.publish(task.tenant_id, "task.completed" if completed else "task.failed", {
            "task_id": task.task_id, "user_id": task.user_id, "status": task.status.value,
            "error": task.error, "added": views.added, "updated": views.updated,
            "deleted": views.deleted})
        if not completed or self.memories is None:
            return
        for kind, ids in (("added", views.added), ("updated", views.updated),
                          ("deleted", views.deleted)):
            if ids and self._subscribed(task.tenant_id, f"memory.{kind}"):
                for memory in self.memories.get_many(task.tenant_id, ids):
                    self.memory_changed(memory, kind, task_id=task.task_id)

    def memory_changed(self, memory: Memory, kind: str, task_id: str | None = None) -> None:
        """memory.added / memory.updated / memory.deleted for one memory."""
        mem0_event = {"added": "ADD", "updated": "UPDATE", "deleted": "DELETE"}[kind]
        self.publish(memory.tenant_id, f"memory.{kind}", {
            "memory_id": memory.id, "user_id": memory.user_id, "agent_id": memory.agent_id,
            "app_id": memory.app_id, "run_id": memory.conversation_id,
            "memory": memory.memory_value, "task_id": task_id},
            event_details={"id": memory.id, "data": {"memory": memory.memory_value},
                           "event": mem0_event})

    def publish(self, tenant_id: str, event_type: str, data: dict,
                event_details: dict | None = None) -> Event:
        event = Event(type=event_type, data=data, event_details=event_details)
        if self.bus is not None:
            try:
                self.bus.put([{"type": event.type, "tenant_id": tenant_id, "id": event.id,
                               "time": event.created_at, "data": data}])
            except Exception:  # noqa: BLE001 - the bus is best effort beside webhooks
                log.exception("event %s not put on the event bus", event.id)
        body = event.model_dump_json(exclude_none=True).encode()
        for hook in self.list(tenant_id):
            if hook.is_active and event_type in hook.event_types:
                delivery = DeliveryRecord(webhook_id=hook.webhook_id, event_id=event.id,
                                          event_type=event_type)
                self._record(tenant_id, delivery)
                self._submit(tenant_id, hook, delivery, body)
        return event

    def _subscribed(self, tenant_id: str, event_type: str) -> bool:
        return self.bus is not None or any(
            event_type in h.event_types and h.is_active for h in self.list(tenant_id))

    # --- delivery --------------------------------------------------------------------
    def _submit(self, tenant_id: str, hook: WebhookRecord, delivery: DeliveryRecord,
                body: bytes) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = DeliveryPool(self.settings.workers)
        self._pool.submit(lambda: self._deliver(tenant_id, hook, delivery, body))

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for the deliveries under way (a Lambda before it returns, tests): True when
        none is left."""
        return self._pool is None or self._pool.drain(timeout)

    def _deliver(self, tenant_id: str, hook: WebhookRecord, delivery: DeliveryRecord,
                 body: bytes) -> None:
        attempts = max(1, self.settings.attempts)
        for attempt in range(1, attempts + 1):
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": "Engram-Webhooks",
                       "X-Engram-Event": delivery.event_type,
                       "X-Engram-Delivery": delivery.delivery_id,
                       TIMESTAMP_HEADER: timestamp,
                       SIGNATURE_HEADER: sign(hook.secret, timestamp, body)}
            delivery.attempts = attempt
            try:
                status = self.transport.post(hook.url, body, headers,
                                             self.settings.timeout_seconds)
                delivery.last_status, delivery.last_error = status, None
                if 200 <= status < 300:
                    delivery.status = "delivered"
                    break
                delivery.last_error = f"the receiver answered HTTP {status}"
            except WebhookRefused as refused:
                delivery.last_error = f"refused: {refused}"
                break  # the policy will not change between attempts
            except Exception as exc:  # noqa: BLE001 - any failure to reach it is retried
                delivery.last_error = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                time.sleep(self.settings.backoff_seconds * 2 ** (attempt - 1))
        if delivery.status != "delivered":
            delivery.status = "failed"
            log.warning("webhook %s: event %s not delivered after %d attempts: %s",
                        hook.webhook_id, delivery.event_id, delivery.attempts,
                        delivery.last_error)
        self._record(tenant_id, delivery)

    def _record(self, tenant_id: str, delivery: DeliveryRecord) -> None:
        delivery.update_time = now_ms()
        try:
            self.store.put_entry(tenant_id, DELIVERIES,
                                 f"{delivery.webhook_id}/{delivery.delivery_id}",
                                 delivery.model_dump_json())
        except Exception:  # noqa: BLE001 - the record is bookkeeping, never a failure
            log.exception("delivery %s not recorded", delivery.delivery_id)


def checked_types(event_types: Sequence[str]) -> list[str]:
    if not event_types:
        raise Unprocessable(f"event_types: name at least one of {', '.join(EVENT_TYPES)}")
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise Unprocessable(f"event_types: unknown {', '.join(unknown)} "
                            f"(known: {', '.join(EVENT_TYPES)})")
    return list(dict.fromkeys(event_types))
