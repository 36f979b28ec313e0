"""A real S3 endpoint for tests: moto's server as a subprocess on 127.0.0.1."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore import UNSIGNED
from botocore.config import Config

BUCKET = "allen-brain-cell-atlas"
REGION = "us-west-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` on a free loopback port; ``stop()`` kills it."""

    def __init__(self, timeout: float = 30):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_up(timeout)

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto's server exited with status {self.process.returncode}")
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                return
            except urllib.error.HTTPError:  # any HTTP answer means it is up
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto's server did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def signed_client(endpoint_url: str):
    """A client with dummy credentials, for creating buckets and uploading (moto accepts any)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def unsigned_client(endpoint_url: str):
    """An anonymous client, as the workflow uses against the public bucket."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED),
    )


def upload_tree(endpoint_url: str, root: str | Path, bucket: str = BUCKET,
                public: bool = True) -> list[str]:  # fmt: skip
    """Create ``bucket`` and upload every file under ``root`` (key = relative path),
    public-read so unsigned GETs work (unless not ``public``). Returns the keys."""
    client = signed_client(endpoint_url)
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    root = Path(root)
    keys = []
    extra = {"ACL": "public-read"} if public else {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        client.upload_file(str(path), bucket, key, ExtraArgs=extra)
        keys.append(key)
    return keys


def reader_credentials(endpoint_url: str) -> dict[str, str]:
    """An IAM user allowed to read S3, created on the server: its keys as the environment
    variables of the AWS credential chain."""
    iam = boto3.client("iam", endpoint_url=endpoint_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    iam.create_user(UserName="reader")
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
                             "Resource": "*"}]}  # fmt: skip
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def require_credentials(endpoint_url: str) -> None:
    """From now on the server checks every request's signature against its IAM users."""
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).close()
