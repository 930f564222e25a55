"""KnowledgeStore for the AWS profile, in the records table (no new table, no GSI):

knowledge base  pk T#<tenant>#KB#<knowledgebase id>  sk BASE        body
file            pk T#<tenant>#KF#<file id>           sk FILE        body (the record)
file pointer    pk T#<tenant>#KB#<knowledgebase id>  sk FILE#<id>   lists a base's files

get/knowledgebase-file and delete/knowledgebase-file name files by id alone, so a file's
record is keyed by its id; the pointer under its base lists the base's files with one
Query. Every read is consistent (base and file items have no GSI keys)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from engram.adapters.dynamodb_tables import _batch_get, _batch_write, _part, _query
from engram.models.knowledge import KnowledgeBase, KnowledgeFile

BASE_SORT_KEY = "BASE"
FILE_SORT_KEY = "FILE"
POINTER_PREFIX = "FILE#"


def _base_pk(tenant_id: str, knowledgebase_id: str) -> str:
    return f"T#{_part(tenant_id)}#KB#{_part(knowledgebase_id)}"


def _file_key(tenant_id: str, file_id: str) -> dict[str, str]:
    return {"pk": f"T#{_part(tenant_id)}#KF#{_part(file_id)}", "sk": FILE_SORT_KEY}


def _pointer_key(file: KnowledgeFile) -> dict[str, str]:
    return {"pk": _base_pk(file.tenant_id, file.knowledgebase_id),
            "sk": f"{POINTER_PREFIX}{_part(file.file_id)}"}


class DynamoKnowledgeStore:
    """Implements KnowledgeStore on the records table."""

    def __init__(self, table: Any):
        self._table = table

    def put_base(self, base: KnowledgeBase) -> None:
        self._table.put_item(Item={"pk": _base_pk(base.tenant_id, base.knowledgebase_id),
                                   "sk": BASE_SORT_KEY, "body": base.model_dump_json()})

    def get_base(self, tenant_id: str, knowledgebase_id: str) -> KnowledgeBase | None:
        item = self._table.get_item(
            Key={"pk": _base_pk(tenant_id, knowledgebase_id), "sk": BASE_SORT_KEY},
            ConsistentRead=True).get("Item")
        return KnowledgeBase.model_validate_json(item["body"]) if item else None

    def delete_base(self, tenant_id: str, knowledgebase_id: str) -> None:
        self._table.delete_item(
            Key={"pk": _base_pk(tenant_id, knowledgebase_id), "sk": BASE_SORT_KEY})

    def put_file(self, file: KnowledgeFile) -> None:
        _batch_write(self._table, [
            {"PutRequest": {"Item": {**_file_key(file.tenant_id, file.file_id),
                                     "body": file.model_dump_json()}}},
            {"PutRequest": {"Item": {**_pointer_key(file), "file_id": file.file_id}}}])

    def claim_file(self, file: KnowledgeFile) -> KnowledgeFile | None:
        try:
            self._table.put_item(Item={**_file_key(file.tenant_id, file.file_id),
                                       "body": file.model_dump_json()},
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            there = self.get_files(file.tenant_id, [file.file_id])
            return there[0] if there else None
        self._table.put_item(Item={**_pointer_key(file), "file_id": file.file_id})
        return None

    def get_files(self, tenant_id: str, file_ids: Sequence[str]) -> list[KnowledgeFile]:
        wanted = list(dict.fromkeys(file_ids))
        items = _batch_get(self._table, [_file_key(tenant_id, i) for i in wanted])
        by_id = {f.file_id: f for f in (KnowledgeFile.model_validate_json(i["body"])
                                        for i in items)}
        return [by_id[i] for i in wanted if i in by_id]

    def list_files(self, tenant_id: str, knowledgebase_id: str) -> list[KnowledgeFile]:
        pointers = _query(self._table, ConsistentRead=True,
                          KeyConditionExpression=Key("pk").eq(
                              _base_pk(tenant_id, knowledgebase_id))
                          & Key("sk").begins_with(POINTER_PREFIX))
        files = self.get_files(tenant_id, [p["file_id"] for p in pointers])
        files.sort(key=lambda f: (f.create_time, f.file_id))
        return files

    def delete_files(self, files: Sequence[KnowledgeFile]) -> None:
        _batch_write(self._table, [
            {"DeleteRequest": {"Key": key}} for f in files
            for key in (_file_key(f.tenant_id, f.file_id), _pointer_key(f))])
