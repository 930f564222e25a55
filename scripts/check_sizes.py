"""Every function of a `sam build` output, with its layers, against Lambda's 250 MB limit
on the unzipped size of a function and all its layers (the /var/task and /opt it gets).

    python scripts/check_sizes.py [.aws-sam/build] [--json sizes.json]

Reads the built template (BUILD_DIR/template.yaml) for each function's CodeUri and Layers
(the function's own, else Globals'), sums the files' sizes as Lambda unpacks them, prints
one row per function and exits 1 when any is over the limit. Also fails on a second
boto3/botocore in a layer (the runtime ships one; a copy would only add ~33 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

LIMIT_BYTES = 250 * 1024 * 1024  # "250 MB" in Lambda's quotas: 262,144,000 bytes
MB = 1024 * 1024
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")  # the python3.12 runtime has these


def tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode  # reads the !Ref / !GetAtt short forms

    template, problems = decode(path)
    if problems or template is None:
        raise SystemExit(f"{path}: {problems}")
    return template


def layer_name(layer: Any) -> str | None:
    """The logical id of a layer in this template (a !Ref), None for an ARN."""
    if isinstance(layer, dict) and "Ref" in layer:
        return layer["Ref"]
    return None


def sizes(build_dir: Path) -> list[dict[str, Any]]:
    template = load_template(build_dir / "template.yaml")
    resources = template["Resources"]
    globals_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    layer_sizes: dict[str, int] = {}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            layer_sizes[name] = tree_size(build_dir / resource["Properties"]["ContentUri"])
    rows = []
    for name, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        layers = [layer_name(layer) for layer in props.get("Layers", globals_layers)]
        unknown = [layer for layer in layers if layer is None or layer not in layer_sizes]
        if unknown:
            raise SystemExit(f"{name}: layers outside this template cannot be sized: {unknown}")
        code = tree_size(build_dir / props["CodeUri"])
        total = code + sum(layer_sizes[layer] for layer in layers)
        rows.append({"function": name, "code_bytes": code, "layers": layers,
                     "layer_bytes": {layer: layer_sizes[layer] for layer in layers},
                     "total_bytes": total, "within_limit": total <= LIMIT_BYTES})
    return rows


def duplicated_runtime_packages(build_dir: Path) -> list[str]:
    found = []
    template = load_template(build_dir / "template.yaml")
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            site = build_dir / resource["Properties"]["ContentUri"] / "python"
            found += [f"{name}: python/{p}" for p in RUNTIME_PACKAGES if (site / p).is_dir()]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", nargs="?", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--json", type=Path, help="also write the sizes here")
    args = parser.parse_args(argv)
    rows = sizes(args.build_dir)
    print(f"{'function':<28} {'code MB':>8} {'layers MB':>10} {'total MB':>9}  "
          f"(limit {LIMIT_BYTES / MB:.0f} MB unzipped)")
    for row in rows:
        layers = sum(row["layer_bytes"].values())
        print(f"{row['function']:<28} {row['code_bytes'] / MB:>8.2f} {layers / MB:>10.1f} "
              f"{row['total_bytes'] / MB:>9.1f}  {'ok' if row['within_limit'] else 'OVER'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    over = [row["function"] for row in rows if not row["within_limit"]]
    duplicates = duplicated_runtime_packages(args.build_dir)
    if over:
        print(f"over Lambda's unzipped limit: {', '.join(over)}", file=sys.stderr)
    if duplicates:
        print(f"packages the runtime already has, shipped again: {', '.join(duplicates)}",
              file=sys.stderr)
    return 1 if over or duplicates else 0


if __name__ == "__main__":
    raise SystemExit(main())
