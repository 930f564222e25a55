"""Groups, senders and settings of a tenant (EverOS's /api/v1/groups, senders, settings),
and the partitions each conversation of EverOS's v2 API wrote to.

- A group is created by POST /groups or by its first group add (/memories/group), which
  also records the group's members: the sender ids that speak in it. A sender is created
  by POST /senders or by its first group message; its name (set, or the sender_name a
  message first carried) names the speaker of later messages that carry only the id.
- Erasing a group's data (delete by group_id) forgets its members with its memories;
  the group itself (name, description) stays until it is set again.
- Everything is per tenant: another tenant's group or sender id is a 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engram.errors import NotFound, Unprocessable
from engram.models.directory import GroupRecord, SenderRecord, SpaceSettings
from engram.models.domain import now_ms
from engram.ports import DirectoryStore

GROUPS, SENDERS, SETTINGS = "groups", "senders", "settings"
SETTINGS_KEY = "space"


def members_of(group_id: str) -> str:
    return f"members:{group_id}"


# mem0's users() list: "<type>:<name>" → {"created": ms} (api/mem0/translate.py)
MEM0_ENTITIES = "mem0-entities"


def owners_of(conversation_id: str) -> str:
    return f"owners:{conversation_id}"


def conversations_of(partition: str) -> str:
    return f"conversations:{partition}"


@dataclass
class DirectoryService:
    store: DirectoryStore

    # --- groups ----------------------------------------------------------------------
    def _group(self, tenant_id: str, group_id: str) -> GroupRecord | None:
        body = self.store.get_entry(tenant_id, GROUPS, group_id)
        return GroupRecord.model_validate_json(body) if body else None

    def get_group(self, tenant_id: str, group_id: str) -> GroupRecord:
        group = self._group(tenant_id, group_id)
        if group is None:
            raise NotFound(f"group {group_id} not found")
        return group

    def put_group(self, tenant_id: str, group_id: str, name: str | None,
                  description: str | None) -> GroupRecord:
        """Create, or update the fields given (upsert by group_id)."""
        group = self._group(tenant_id, group_id) or GroupRecord(group_id=group_id)
        return self._save_group(tenant_id, group, name, description)

    def patch_group(self, tenant_id: str, group_id: str, name: str | None,
                    description: str | None) -> GroupRecord:
        if name is None and description is None:
            raise Unprocessable("give name and/or description")
        return self._save_group(tenant_id, self.get_group(tenant_id, group_id), name,
                                description)

    def _save_group(self, tenant_id: str, group: GroupRecord, name: str | None,
                    description: str | None) -> GroupRecord:
        if name is not None:
            group.name = name
        if description is not None:
            group.description = description
        group.update_time = now_ms()
        self.store.put_entry(tenant_id, GROUPS, group.group_id, group.model_dump_json())
        return group

    def members(self, tenant_id: str, group_id: str) -> list[str]:
        return [key for key, _ in self.store.list_entries(tenant_id, members_of(group_id))]

    def note_group_messages(self, tenant_id: str, group_id: str,
                            senders: Iterable[tuple[str, str | None]]) -> None:
        """A group add: the group, its speakers as members, and each speaker as a sender
        (named by the first sender_name seen, unless a name was set)."""
        if self._group(tenant_id, group_id) is None:
            self.store.put_entry(tenant_id, GROUPS, group_id,
                                 GroupRecord(group_id=group_id).model_dump_json())
        known = set(self.members(tenant_id, group_id))
        for sender_id, name in dict(senders).items():
            if sender_id not in known:
                self.store.put_entry(tenant_id, members_of(group_id), sender_id, "{}")
            sender = self._sender(tenant_id, sender_id)
            if sender is None or (sender.name is None and name):
                sender = sender or SenderRecord(sender_id=sender_id)
                sender.name, sender.update_time = name, now_ms()
                self.store.put_entry(tenant_id, SENDERS, sender_id, sender.model_dump_json())

    def forget_members(self, tenant_id: str, group_id: str) -> int:
        return self.store.delete_collection(tenant_id, members_of(group_id))

    # --- senders ---------------------------------------------------------------------
    def _sender(self, tenant_id: str, sender_id: str) -> SenderRecord | None:
        body = self.store.get_entry(tenant_id, SENDERS, sender_id)
        return SenderRecord.model_validate_json(body) if body else None

    def get_sender(self, tenant_id: str, sender_id: str) -> SenderRecord:
        sender = self._sender(tenant_id, sender_id)
        if sender is None:
            raise NotFound(f"sender {sender_id} not found")
        return sender

    def put_sender(self, tenant_id: str, sender_id: str, name: str | None) -> SenderRecord:
        sender = self._sender(tenant_id, sender_id) or SenderRecord(sender_id=sender_id)
        return self._save_sender(tenant_id, sender, name)

    def patch_sender(self, tenant_id: str, sender_id: str, name: str | None) -> SenderRecord:
        if name is None:
            raise Unprocessable("name: give the sender's new name")
        return self._save_sender(tenant_id, self.get_sender(tenant_id, sender_id), name)

    def _save_sender(self, tenant_id: str, sender: SenderRecord,
                     name: str | None) -> SenderRecord:
        if name is not None:
            sender.name = name
        sender.update_time = now_ms()
        self.store.put_entry(tenant_id, SENDERS, sender.sender_id, sender.model_dump_json())
        return sender

    def sender_names(self, tenant_id: str, sender_ids: Iterable[str]) -> dict[str, str]:
        """The names set for these senders (those without one are left out)."""
        names = {}
        for sender_id in dict.fromkeys(sender_ids):
            sender = self._sender(tenant_id, sender_id)
            if sender is not None and sender.name:
                names[sender_id] = sender.name
        return names

    # --- settings --------------------------------------------------------------------
    def settings(self, tenant_id: str) -> SpaceSettings:
        """The tenant's settings; the defaults are stored on first read, so created_at
        stays put."""
        body = self.store.get_entry(tenant_id, SETTINGS, SETTINGS_KEY)
        if body:
            return SpaceSettings.model_validate_json(body)
        settings = SpaceSettings()
        self.store.put_entry(tenant_id, SETTINGS, SETTINGS_KEY, settings.model_dump_json())
        return settings

    def update_settings(self, tenant_id: str, changes: dict) -> SpaceSettings:
        """Only the fields given change (llm_custom_setting: null clears it)."""
        timezone = changes.get("timezone")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise Unprocessable(f"timezone: {timezone!r} is not an IANA time zone "
                                    "(e.g. Europe/Paris, UTC)") from None
        current = self.settings(tenant_id)
        updated = current.model_copy(update={**changes, "update_time": now_ms()})
        updated = SpaceSettings.model_validate(updated.model_dump())
        self.store.put_entry(tenant_id, SETTINGS, SETTINGS_KEY, updated.model_dump_json())
        return updated

    # --- conversation owners (EverOS v2) ---------------------------------------------
    def note_owner(self, tenant_id: str, conversation_id: str, partition: str) -> None:
        if self.store.get_entry(tenant_id, owners_of(conversation_id), partition) is None:
            # the way back first, so forget_owner finds every record that names the owner
            self.store.put_entry(tenant_id, conversations_of(partition), conversation_id, "{}")
            self.store.put_entry(tenant_id, owners_of(conversation_id), partition, "{}")

    def forget_owner(self, tenant_id: str, partition: str) -> None:
        """An owner's data was erased: no conversation names it any more, nor mem0's
        list of users (an agent's, app's or run's own partition is "<kind>:<quoted>")."""
        for conversation_id, _ in self.store.list_entries(tenant_id,
                                                          conversations_of(partition)):
            self.store.delete_entry(tenant_id, owners_of(conversation_id), partition)
        self.store.delete_collection(tenant_id, conversations_of(partition))
        self.store.delete_entry(tenant_id, MEM0_ENTITIES, f"user:{partition}")
        kind, _, name = partition.partition(":")
        if kind in ("agent", "app", "run"):
            self.store.delete_entry(tenant_id, MEM0_ENTITIES, f"{kind}:{unquote(name)}")

    def owners(self, tenant_id: str, conversation_id: str) -> list[str]:
        """The partitions (Engram users) v2 adds of this conversation wrote to."""
        return [key for key, _ in self.store.list_entries(tenant_id, owners_of(conversation_id))]
