#!/usr/bin/env python3
"""Create an API key for a tenant of a deployed stack.

The key is printed once and never stored: the API keys table keeps only its SHA-256
(the authorizer hashes what a client sends and looks that up).

  python scripts/create_api_key.py --table <ApiKeysTableName output> --tenant acme \
      [--label "acme production"] [--region us-east-1]

Uses the usual AWS credentials (profile, environment); needs dynamodb:PutItem on the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from engram.adapters.dynamodb_tables import DynamoApiKeyStore  # noqa: E402
from engram.services.keys import ApiKeyService  # noqa: E402


def create_api_key(table: Any, tenant_id: str, label: str = "") -> str:
    """A new key for `tenant_id`, registered in `table` (a boto3 Table resource)."""
    return ApiKeyService(DynamoApiKeyStore(table)).create(tenant_id, label)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="the stack's ApiKeysTableName output")
    parser.add_argument("--tenant", required=True, help="the tenant the key acts for")
    parser.add_argument("--label", default="", help="a note kept with the key's hash")
    parser.add_argument("--region", default=None, help="default: your AWS configuration's")
    args = parser.parse_args(argv)

    import boto3

    table = boto3.resource("dynamodb", region_name=args.region).Table(args.table)
    key = create_api_key(table, args.tenant, args.label)
    print(key)
    print(f"(tenant {args.tenant}; shown once, only its SHA-256 is stored)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
