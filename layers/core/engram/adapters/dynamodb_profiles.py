"""ProfileStore on the records table (no new table, no template change):

template  pk T#<tenant>#PROFILE_TEMPLATES   sk <template id>            body
profile   pk T#<tenant>#U#<user>            sk PROFILE#<template id>    body  (a user's)
          pk T#<tenant>#A#<agent>           sk PROFILE#<template id>    body  (an agent's)

A user's profiles share the partition of their raw messages (whose sort keys start with
MSG#), so reading or erasing them is one Query on the user's key. Every read is
consistent; nothing scans."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from engram.adapters.dynamodb_tables import _batch_write, _part, _query, _user_key
from engram.models.profiles import Profile, ProfileTemplate

PROFILE_PREFIX = "PROFILE#"


def _templates_key(tenant_id: str) -> str:
    return f"T#{_part(tenant_id)}#PROFILE_TEMPLATES"


def _subject_key(tenant_id: str, kind: str, subject_id: str) -> str:
    if kind == "user":
        return _user_key(tenant_id, subject_id)
    return f"T#{_part(tenant_id)}#A#{_part(subject_id)}"


class DynamoProfileStore:
    """Implements ProfileStore (see the module docstring for the keys)."""

    def __init__(self, table: Any):
        self._table = table  # the records table (a boto3 Table resource)

    def put_template(self, template: ProfileTemplate) -> None:
        self._table.put_item(Item={"pk": _templates_key(template.tenant_id),
                                   "sk": _part(template.profile_template_id),
                                   "create_time": template.create_time,
                                   "body": template.model_dump_json()})

    def get_template(self, tenant_id: str, template_id: str) -> ProfileTemplate | None:
        item = self._table.get_item(Key={"pk": _templates_key(tenant_id),
                                         "sk": _part(template_id)},
                                    ConsistentRead=True).get("Item")
        return ProfileTemplate.model_validate_json(item["body"]) if item else None

    def list_templates(self, tenant_id: str) -> list[ProfileTemplate]:
        items = _query(self._table, ConsistentRead=True,
                       KeyConditionExpression=Key("pk").eq(_templates_key(tenant_id)))
        templates = [ProfileTemplate.model_validate_json(i["body"]) for i in items]
        templates.sort(key=lambda t: (t.create_time, t.profile_template_id), reverse=True)
        return templates

    def put_profile(self, profile: Profile) -> None:
        self._table.put_item(Item={
            "pk": _subject_key(profile.tenant_id, profile.subject_kind, profile.subject_id),
            "sk": PROFILE_PREFIX + _part(profile.profile_template_id),
            "body": profile.model_dump_json()})

    def get_profile(self, tenant_id: str, kind: str, subject_id: str,
                    template_id: str) -> Profile | None:
        item = self._table.get_item(Key=self._key(tenant_id, kind, subject_id, template_id),
                                    ConsistentRead=True).get("Item")
        return Profile.model_validate_json(item["body"]) if item else None

    def profiles_of(self, tenant_id: str, kind: str, subject_id: str) -> list[Profile]:
        items = self._items(tenant_id, kind, subject_id)
        return [Profile.model_validate_json(i["body"]) for i in items]

    def delete_profile(self, tenant_id: str, kind: str, subject_id: str,
                       template_id: str) -> bool:
        answer = self._table.delete_item(
            Key=self._key(tenant_id, kind, subject_id, template_id), ReturnValues="ALL_OLD")
        return "Attributes" in answer

    def erase_subject(self, tenant_id: str, kind: str, subject_id: str) -> int:
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._items(tenant_id, kind, subject_id)]
        _batch_write(self._table, [{"DeleteRequest": {"Key": k}} for k in keys])
        return len(keys)

    def _items(self, tenant_id: str, kind: str, subject_id: str) -> list[dict[str, Any]]:
        return _query(self._table, ConsistentRead=True,
                      KeyConditionExpression=Key("pk").eq(_subject_key(tenant_id, kind,
                                                                       subject_id))
                      & Key("sk").begins_with(PROFILE_PREFIX))

    @staticmethod
    def _key(tenant_id: str, kind: str, subject_id: str, template_id: str) -> dict[str, str]:
        return {"pk": _subject_key(tenant_id, kind, subject_id),
                "sk": PROFILE_PREFIX + _part(template_id)}
