"""`make e2e-aws`: the deployed service end to end, in a stack of its own.

    python scripts/e2e_aws.py [--build-dir .aws-sam/build] [--region R] [--keep] [--snapstart]

With AWS credentials: deploys the `sam build` output as a new stack (engram-e2e-<time>,
its own Serverless collection without standby replicas), creates an API key, then checks
  1. the MemOS client flow (tests/compat/memos_client_flow.py in .venv-compat) on ApiUrl;
  2. a PDF through the pre-signed POST: /api/v1/object/sign, the form posted to S3
     (204), an EverOS add naming the key, its task until "success", the text searchable;
  3. the inbox: a file put under inbox/<tenant>/<user>/ until its text is searchable;
  4. the ingest queue: a job sent to IngestQueueUrl until its text is searchable;
and deletes the stack (emptying its bucket first) whatever happened, unless --keep.
--snapstart deploys with SnapStart=PublishedVersions: the API and authorizer are then
published from primed snapshots (a priming that fails fails the deploy) and every check
runs on restored environments.
Without credentials it says so and exits 0: nothing is deployed. It costs a few cents
(mostly the collection's OCU-hours while it runs, ~15-25 minutes with deployment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "core"), str(ROOT / "scripts")]
SAM = Path(os.environ.get("ENGRAM_SAM_VENV", ROOT / ".venv-sam")) / "bin" / "sam"
COMPAT = Path(os.environ.get("ENGRAM_COMPAT_VENV", ROOT / ".venv-compat")) / "bin" / "python"
TENANT = "e2e"
WAIT_S = 300  # a cold collection, a cold pipeline


class Failed(AssertionError):
    pass


def say(message: str) -> None:
    print(f"[e2e-aws] {message}", flush=True)


def credentials(region: str | None) -> tuple[Any, str] | None:
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.get_credentials() is None or not session.region_name:
        return None
    return session, session.region_name


def deploy(build_dir: Path, stack: str, collection: str, region: str,
           snapstart: bool = False) -> None:
    template = build_dir / "template.yaml"
    if not template.is_file():
        raise Failed(f"{template} is missing: run `make sam-build` first")
    subprocess.run([str(SAM), "deploy", "--template-file", str(template), "--stack-name", stack,
                    "--region", region, "--resolve-s3", "--s3-prefix", stack,
                    "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset",
                    "--no-fail-on-empty-changeset", "--parameter-overrides",
                    *(f"{k}={v}" for k, v in parameters(collection, snapstart).items())],
                   check=True, env=dict(os.environ, SAM_CLI_TELEMETRY="0"))


def parameters(collection: str, snapstart: bool = False) -> dict[str, str]:
    """The stack's template parameters: the cheapest shape, nothing kept for long."""
    return {"StageName": "e2e", "OpenSearchCollectionName": collection,
            "OpenSearchStandbyReplicas": "DISABLED", "LogRetentionDays": "1",
            "RawRequestRetentionDays": "1", "AuthorizerCacheSeconds": "0",
            "SnapStart": "PublishedVersions" if snapstart else "None"}


def names(now: float | None = None) -> tuple[str, str]:
    """A stack name and a collection name no other run uses."""
    suffix = f"{time.strftime('%m%d%H%M', time.gmtime(now))}-{uuid.uuid4().hex[:4]}"
    return f"engram-e2e-{suffix}", f"e2e-{suffix}"


def outputs(session: Any, stack: str) -> dict[str, str]:
    described = session.client("cloudformation").describe_stacks(StackName=stack)
    return {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}


def delete(session: Any, stack: str, bucket: str | None) -> None:
    if bucket:  # CloudFormation cannot delete a bucket that still holds objects
        objects = session.resource("s3").Bucket(bucket).objects.all()
        try:
            objects.delete()
        except session.client("s3").exceptions.NoSuchBucket:
            pass
    cloudformation = session.client("cloudformation")
    cloudformation.delete_stack(StackName=stack)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 15, "MaxAttempts": 120})


class Api:
    def __init__(self, api_url: str, key: str):
        self.v1 = api_url.rstrip("/")
        self.everos = self.v1.removesuffix("/v1") + "/api/v1"
        self.headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}

    def post(self, url: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(url, headers=self.headers, data=json.dumps(body), timeout=35)

    def memory_values(self, user: str, query: str) -> set[str]:
        answer = self.post(f"{self.v1}/search/memory", {"user_id": user, "query": query})
        if answer.status_code != 200:
            raise Failed(f"search: {answer.status_code} {answer.text[:500]}")
        data = answer.json()["data"]
        return ({m["memory_value"] for m in data["memory_detail_list"]}
                | {p["preference"] for p in data["preference_detail_list"]})

    def wait_searchable(self, user: str, query: str, word: str, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if any(word in value.lower() for value in self.memory_values(user, query)):
                say(f"{what}: searchable")
                return
            time.sleep(5)
        raise Failed(f"{what}: {word!r} not found by search in {WAIT_S} s")


def memos_client_flow(api: Api, key: str) -> None:
    proc = subprocess.run([str(COMPAT), str(ROOT / "tests" / "compat" / "memos_client_flow.py"),
                           "--base-url", api.v1, "--api-key", key,
                           "--user", f"memos-{uuid.uuid4().hex[:8]}"],
                          capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("PYTHONPATH", "PYTHONHOME")})
    if proc.returncode != 0 or "memos client flow ok" not in proc.stdout:
        raise Failed(f"MemOS client flow:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    say("MemOS client flow: ok")


def presigned_upload(api: Api) -> None:
    from tests import fixtures_docs as docs

    user = f"upload-{uuid.uuid4().hex[:8]}"
    signed = api.post(f"{api.everos}/object/sign", {"objectList": [
        {"fileId": "f1", "fileName": "falcon.pdf", "fileType": "file"}]})
    if signed.status_code != 200:
        raise Failed(f"object/sign: {signed.status_code} {signed.text[:500]}")
    (item,) = signed.json()["result"]["data"]["objectList"]
    form = item["objectSignedInfo"]
    document = docs.pdf([docs.text_page(["The Falcon project ships on the ninth of March."])])
    posted = requests.post(form["url"], data=form["fields"], timeout=60,
                           files={"file": ("falcon.pdf", document, "application/pdf")})
    if posted.status_code != 204:
        raise Failed(f"pre-signed POST to S3: {posted.status_code} {posted.text[:500]}")
    added = api.post(f"{api.everos}/memories", {"user_id": user, "messages": [{
        "role": "user", "timestamp": int(time.time() * 1000), "content": [
            {"type": "text", "text": "The Falcon plan."},
            {"type": "pdf", "uri": item["objectKey"]}]}]})
    if added.status_code != 202:
        raise Failed(f"EverOS add: {added.status_code} {added.text[:500]}")
    task_id = added.json()["data"]["task_id"]
    deadline = time.monotonic() + WAIT_S
    while True:
        status = requests.get(f"{api.everos}/tasks/{task_id}", headers=api.headers,
                              timeout=35).json()["data"]
        if status["status"] == "success":
            break
        if status["status"] == "failed" or time.monotonic() > deadline:
            raise Failed(f"upload task: {json.dumps(status)[:1000]}")
        time.sleep(5)
    say("pre-signed upload: task success")
    api.wait_searchable(user, "When does the Falcon project ship?", "falcon", "uploaded PDF")


def inbox(api: Api, session: Any, bucket: str) -> None:
    user = f"inbox-{uuid.uuid4().hex[:8]}"
    session.client("s3").put_object(Bucket=bucket, Key=f"inbox/{TENANT}/{user}/notes/e2e.md",
                                    Body=b"I keep my blue bicycle in the garage.")
    api.wait_searchable(user, "Where is the bicycle kept?", "bicycle", "inbox file")


def ingest_queue(api: Api, session: Any, queue_url: str) -> None:
    user = f"queue-{uuid.uuid4().hex[:8]}"
    job = {"tenant_id": TENANT, "idempotency_key": f"e2e-{uuid.uuid4()}", "user_id": user,
           "conversation_id": "e2e", "messages": [
               {"role": "user", "content": "I prefer window seats on long flights."}]}
    session.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(job))
    api.wait_searchable(user, "Which seat does the user prefer?", "window", "queued job")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--region")
    parser.add_argument("--keep", action="store_true", help="leave the stack deployed")
    parser.add_argument("--snapstart", action="store_true",
                        help="deploy the API and authorizer with SnapStart")
    args = parser.parse_args(argv)
    found = credentials(args.region or os.environ.get("AWS_REGION"))
    if found is None:
        say("skipped: no AWS credentials or no Region configured (set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_REGION or --region); "
            "nothing was deployed")
        return 0
    session, region = found
    stack, collection = names()
    say(f"deploying {stack} in {region}")
    bucket = None
    try:
        deploy(args.build_dir, stack, collection, region, args.snapstart)
        out = outputs(session, stack)
        bucket = out["BucketName"]
        from create_api_key import create_api_key

        key = create_api_key(session.resource("dynamodb").Table(out["ApiKeysTableName"]),
                             TENANT, label="make e2e-aws")
        api = Api(out["ApiUrl"], key)
        memos_client_flow(api, key)
        presigned_upload(api)
        inbox(api, session, bucket)
        ingest_queue(api, session, out["IngestQueueUrl"])
        say("all checks passed")
        return 0
    except (Failed, subprocess.CalledProcessError) as failure:
        say(f"FAILED: {failure}")
        return 1
    finally:
        if args.keep:
            say(f"--keep: {stack} left deployed")
        else:
            say(f"deleting {stack}")
            delete(session, stack, bucket)


if __name__ == "__main__":
    raise SystemExit(main())
