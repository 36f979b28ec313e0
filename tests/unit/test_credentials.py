"""A bucket that needs credentials (the staging bucket of HMBA-10xMultiome-Subcortex): with
abc.anonymous false the store signs its requests with the AWS credential chain, against a
moto server that checks every signature. Anonymous reads are refused in one line that names
the setting; no credentials at all is one line too."""

import pytest
from conftest import DEFAULT_ABC
from s3_server import BUCKET, MotoServer, reader_credentials, require_credentials, signed_client

from abc_downsample.cache.store import store_from_config
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.errors import AbcError

KEY = "staged/file.bin"
PAYLOAD = bytes(range(256)) * 40


@pytest.fixture(scope="module")
def staging():
    """A private object on a server that requires signed requests, and a reader's keys."""
    server = MotoServer()
    client = signed_client(server.url)
    region = {"LocationConstraint": "us-west-2"}
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=region)
    client.put_object(Bucket=BUCKET, Key=KEY, Body=PAYLOAD)
    keys = reader_credentials(server.url)
    require_credentials(server.url)
    yield {"url": server.url, "keys": keys}
    server.stop()


def store(staging, anonymous: bool):
    abc = abc_with_defaults({"endpoint_url": staging["url"], "anonymous": anonymous,
                             "download": {"retries": 1}})  # fmt: skip
    return store_from_config(abc)


def test_signed_requests_read_ranges_sizes_and_listings(staging, monkeypatch):
    for name, value in staging["keys"].items():
        monkeypatch.setenv(name, value)
    signed = store(staging, anonymous=False)
    assert signed.size(KEY) == len(PAYLOAD)
    assert signed.read_range(KEY, 100, 612) == PAYLOAD[100:612]
    assert signed.read_ranges(KEY, [(0, 10), (5000, 5100)], 2) == [PAYLOAD[:10], PAYLOAD[5000:5100]]
    assert signed.list_keys("staged/") == [KEY]


def test_anonymous_reads_are_refused_in_one_line_naming_the_setting(staging):
    with pytest.raises(AbcError) as err:
        store(staging, anonymous=True).read_range(KEY, 0, 10)
    assert "abc.anonymous: false" in str(err.value) and "\n" not in str(err.value)


def test_wrong_keys_are_refused_in_one_line(staging, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", staging["keys"]["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(AbcError, match="denied"):
        store(staging, anonymous=False).read_range(KEY, 0, 10)


def test_no_credentials_at_all_is_one_line(staging, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AbcError, match="no AWS credentials were found"):
        store(staging, anonymous=False)
    assert DEFAULT_ABC["anonymous"] is True, "anonymous stays the default"
