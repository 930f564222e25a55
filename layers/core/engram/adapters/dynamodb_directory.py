"""The directory (groups, senders, settings, conversation owners) on AWS: items of the
records table, one partition per (tenant, collection), so a collection is one query.

    pk T#<tenant>#DIR#<collection>   sk <key>   body

Ids are percent-encoded inside keys (as in dynamodb_tables.py), so no "#" in a tenant
or collection can make two partitions meet. Reads are consistent."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from engram.adapters.dynamodb_tables import _batch_write, _part, _query


def _pk(tenant_id: str, collection: str) -> str:
    return f"T#{_part(tenant_id)}#DIR#{_part(collection)}"


class DynamoDirectory:
    """Implements DirectoryStore on the records table."""

    def __init__(self, table: Any):
        self._table = table

    def get_entry(self, tenant_id: str, collection: str, key: str) -> str | None:
        item = self._table.get_item(Key={"pk": _pk(tenant_id, collection), "sk": _part(key)},
                                    ConsistentRead=True).get("Item")
        return item["body"] if item else None

    def put_entry(self, tenant_id: str, collection: str, key: str, body: str) -> None:
        self._table.put_item(Item={"pk": _pk(tenant_id, collection), "sk": _part(key),
                                   "entry_key": key, "body": body})

    def list_entries(self, tenant_id: str, collection: str) -> list[tuple[str, str]]:
        items = _query(self._table, ConsistentRead=True,
                       KeyConditionExpression=Key("pk").eq(_pk(tenant_id, collection)))
        return sorted((i["entry_key"], i["body"]) for i in items)

    def delete_entry(self, tenant_id: str, collection: str, key: str) -> None:
        self._table.delete_item(Key={"pk": _pk(tenant_id, collection), "sk": _part(key)})

    def delete_collection(self, tenant_id: str, collection: str) -> int:
        keys = _query(self._table, ConsistentRead=True, ProjectionExpression="pk, sk",
                      KeyConditionExpression=Key("pk").eq(_pk(tenant_id, collection)))
        _batch_write(self._table, [{"DeleteRequest": {"Key": k}} for k in keys])
        return len(keys)
