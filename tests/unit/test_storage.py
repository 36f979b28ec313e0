"""Store: S3 (a real moto server, behind our fault proxy) and local directory mirrors."""

import os
import random

import pytest
from conftest import store_of
from s3_server import BUCKET, free_port, signed_client

from abc_downsample.cache.store import LocalStore
from abc_downsample.errors import AbcError, TransientError

# Keys of our own next to the shared server's synthetic release.
KEY = "test_storage/expression_matrices/WMB-10Xv2-TH-raw.h5ad"
OTHER = "test_storage/metadata/cell metadata+.csv"  # a space and a plus: URL quoting


@pytest.fixture(scope="module")
def objects():
    rng = random.Random(7)
    return {KEY: rng.randbytes(3 * 1024 * 1024 + 17), OTHER: b"cell_label,x\nA,1\n"}


@pytest.fixture(scope="module")
def s3(s3_endpoint, objects):
    """The shared moto server (tests/conftest.py), with our objects added to its bucket."""
    client = signed_client(s3_endpoint)
    for key, body in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body, ACL="public-read")
    return s3_endpoint


@pytest.fixture
def mirror(tmp_path, objects):
    for key, body in objects.items():
        path = tmp_path / "mirror" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return tmp_path / "mirror"


@pytest.fixture(params=["s3", "local", "file-url"])
def store(request, objects):
    if request.param == "s3":
        return store_of(BUCKET, request.getfixturevalue("s3"))
    root = request.getfixturevalue("mirror")
    store = store_of(root.as_uri() if request.param == "file-url" else str(root))
    assert isinstance(store, LocalStore)
    return store


def test_reads_match_the_object(store, objects):
    data = objects[KEY]
    assert store.size(KEY) == len(data)
    assert store.read_range(KEY, 1000, 70000) == data[1000:70000]
    assert store.read_range(KEY, 5, 5) == b""
    assert b"".join(store.iter_range(KEY, 3, len(data) - 1, 100_000)) == data[3:-1]
    assert store.get_bytes(OTHER) == objects[OTHER]
    assert store.list_keys("test_storage/expression_matrices/") == [KEY]
    assert store.list_keys("test_storage/") == sorted([KEY, OTHER])
    assert store.list_keys("nothing/") == []


def test_read_ranges_are_returned_in_the_order_asked(store, objects):
    data = objects[KEY]
    rng = random.Random(3)
    ranges = []
    for _ in range(300):
        start = rng.randrange(len(data))
        ranges.append((start, min(len(data), start + rng.randrange(1, 5000))))
    got = store.read_ranges(KEY, ranges, max_workers=8)
    assert got == [data[a:b] for a, b in ranges]


def test_missing_key_names_the_key_and_the_fix(store):
    with pytest.raises(AbcError, match=r"'releases/19990101/manifest.json' is not in .*check"):
        store.size("releases/19990101/manifest.json")
    with pytest.raises(AbcError, match="is not in"):
        store.read_range("releases/19990101/manifest.json", 0, 10)


def test_unknown_bucket_is_named(s3):
    store = store_of("no-such-bucket", s3)
    for call in (lambda: store.size(KEY), lambda: store.list_keys("releases/")):
        with pytest.raises(AbcError, match="bucket 'no-such-bucket' does not exist"):
            call()


def test_unreachable_endpoint_names_the_endpoint_and_the_fix():
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = store_of(BUCKET, endpoint, retries=2)
    with pytest.raises(TransientError) as err:
        store.read_range(KEY, 0, 10)
    message = str(err.value)
    assert endpoint in message and KEY in message and "abc.endpoint_url" in message
    assert "\n" not in message


def test_no_network_error_reads_as_one_sentence():
    """No DNS (no network, a wrong host): urllib3's message nests parentheses; the error
    keeps them balanced (no "...name resolution))")."""
    store = store_of(BUCKET, "http://no-such-host.invalid", retries=1)
    with pytest.raises(TransientError) as err:
        store.get_bytes("releases/20250531/manifest.json")
    message = str(err.value)
    assert "))" not in message and message.count("(") == message.count(")"), message


def test_endpoint_from_the_environment(s3, objects, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3)
    store = store_of(BUCKET)
    assert store.endpoint == s3
    assert store.read_range(KEY, 0, 100) == objects[KEY][:100]


def test_aws_urls_are_regional_and_virtual_hosted(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    store = store_of(BUCKET)
    assert store._url("a b/c.csv") == (
        "https://allen-brain-cell-atlas.s3.us-west-2.amazonaws.com/a%20b/c.csv"
    )


def test_server_errors_are_retried(proxy, objects):
    proxy.fail_first = 3
    store = store_of(BUCKET, proxy.url, retries=5)
    assert store.size(KEY) == len(objects[KEY])
    assert store.read_range(KEY, 10, 20000) == objects[KEY][10:20000]
    assert proxy.requests >= 4 + 1  # three refusals then the HEAD, then the GET


def test_cut_connections_are_retried(proxy, objects):
    proxy.cut_first = 2
    proxy.cut_after = 500
    store = store_of(BUCKET, proxy.url, retries=5)
    assert store.read_range(KEY, 0, 100_000) == objects[KEY][:100_000]
    assert proxy.cut_first == 0


def test_cut_stream_continues_where_it_stopped(proxy, objects):
    proxy.cut_first = 3
    proxy.cut_after = 100_000
    store = store_of(BUCKET, proxy.url, retries=5)
    data = objects[KEY]
    assert b"".join(store.iter_range(KEY, 0, len(data))) == data
    assert proxy.cut_first == 0
    assert proxy.bytes_served == len(data)  # no byte fetched twice


def test_stalled_answers_time_out_and_are_retried(proxy, objects):
    proxy.stall_first = 2
    proxy.stall_seconds = 3.0
    store = store_of(BUCKET, proxy.url, retries=4, read_timeout=0.5)
    assert store.read_range(KEY, 0, 1000) == objects[KEY][:1000]
    assert proxy.stall_first == 0


def test_persistent_server_errors_end_in_a_clear_error(proxy):
    proxy.fail_first = 100
    store = store_of(BUCKET, proxy.url, retries=3)
    with pytest.raises(TransientError, match=r"after 3 tries \(HTTP 50[03]"):
        store.read_range(KEY, 0, 10)


def test_local_directory_must_exist(tmp_path):
    with pytest.raises(AbcError, match="is not a directory"):
        store_of(str(tmp_path / "absent"))


def test_local_read_past_the_end_is_an_error(mirror, objects):
    store = store_of(str(mirror))
    size = len(objects[KEY])
    with pytest.raises(AbcError, match="truncated"):
        store.read_range(KEY, size - 10, size + 10)


def test_local_store_is_not_fooled_by_a_directory(mirror):
    store = store_of(str(mirror))
    os.makedirs(mirror / "releases" / "20250531")
    with pytest.raises(AbcError, match="is not in"):
        store.size("releases/20250531")
