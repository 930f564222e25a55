"""UploadSigner on S3: pre-signed POST forms (boto3 generate_presigned_post) whose policy
pins the key and the content type and caps the size. S3 enforces the policy when the
client posts the file; the form is signed with the function's role, which therefore
needs s3:PutObject on the uploads/ prefix."""

from __future__ import annotations

from typing import Any

from engram.ports import SignedUpload


class S3UploadSigner:
    def __init__(self, client: Any, bucket: str):
        self._s3 = client  # a boto3 S3 client
        self._bucket = bucket

    def sign(self, key: str, content_type: str, max_bytes: int,
             expires_in: int) -> SignedUpload:
        # generate_presigned_post adds {"bucket": ...} and {"key": ...} itself.
        out = self._s3.generate_presigned_post(
            Bucket=self._bucket, Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type},
                        ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in)
        return SignedUpload(url=out["url"], fields={k: str(v) for k, v in out["fields"].items()})
