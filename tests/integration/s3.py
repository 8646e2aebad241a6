"""An S3-compatible server for the object-store sink's tests: `moto_server` (PyPI
`moto[server]`) started as a subprocess on a free port, with a bucket made through
boto3.

    from s3 import s3   # the fixture (module scope)

    def test_x(s3):
        s3.endpoint, s3.bucket, s3.access_key, s3.secret_key, s3.region
        s3.keys(prefix="topics/")          # object names
        s3.get("topics/t/partition=0/...")  # bytes
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import helpers as h
from conftest import STARTUP_TIMEOUT, free_port


class S3:
    def __init__(self, endpoint: str, bucket: str, region: str = "us-east-1"):
        import boto3   # comes with moto
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        # moto accepts any credentials
        self.access_key = "testing"
        self.secret_key = "testing"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                                   aws_access_key_id=self.access_key,
                                   aws_secret_access_key=self.secret_key)

    def create_bucket(self) -> None:
        self.client.create_bucket(Bucket=self.bucket)

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _moto_server() -> str:
    exe = Path(sys.executable).parent / "moto_server"
    if exe.exists():
        return str(exe)
    found = shutil.which("moto_server")
    assert found, "moto_server not found: pip install -r tests/requirements.txt"
    return found


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a free port with one bucket; stopped after the module."""
    workdir = tmp_path_factory.mktemp("moto")
    log_path = workdir / "moto.log"
    port = free_port()
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([_moto_server(), "-H", "127.0.0.1", "-p", str(port)],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd=str(workdir))
    endpoint = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"moto_server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        h.wait_until(up, STARTUP_TIMEOUT, f"moto_server on {endpoint}")
        store = S3(endpoint, h.unique("bucket"))
        store.create_bucket()
        yield store
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
