"""scripts/e2e_aws.py (`make e2e-aws`) cannot run here: no AWS account. What can be
checked without one: it skips cleanly without credentials (deploying nothing), and what
it would deploy names only the template's parameters with values they allow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import e2e_aws  # noqa: E402


def test_without_credentials_it_skips_with_a_clear_message_and_deploys_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1",
               ENGRAM_SAM_VENV=str(tmp_path / "no-sam"))  # a call to sam would fail
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "e2e_aws.py"),
                           "--build-dir", str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "skipped: no AWS credentials" in proc.stdout and "deploying" not in proc.stdout


def test_the_stack_it_deploys_uses_the_templates_parameters_within_their_rules():
    template, problems = decode(ROOT / "template.yaml")
    assert not problems
    stack, collection = e2e_aws.names()
    assert stack != e2e_aws.names()[0]  # each run its own stack
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", stack)
    for snapstart in (False, True):
        chosen = e2e_aws.parameters(collection, snapstart)
        assert chosen["SnapStart"] == ("PublishedVersions" if snapstart else "None")
        for name, value in chosen.items():
            declared = template["Parameters"][name]
            if "AllowedPattern" in declared:
                assert re.fullmatch(declared["AllowedPattern"], value), name
            if "AllowedValues" in declared:
                assert value in [str(v) for v in declared["AllowedValues"]], name
    assert len(f"{collection}-data") <= 32  # security policy names: at most 32 characters


def test_the_everos_routes_are_reached_beside_the_v1_base_url():
    api = e2e_aws.Api("https://abc.execute-api.eu-west-1.amazonaws.com/e2e/v1", "k")
    assert api.v1.endswith("/e2e/v1")
    assert api.everos == "https://abc.execute-api.eu-west-1.amazonaws.com/e2e/api/v1"
    assert api.headers["Authorization"] == "Token k"
