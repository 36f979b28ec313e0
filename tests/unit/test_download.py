"""fetch_file and the cache checks, against a real moto server behind our fault proxy."""

import hashlib
import json
import logging
import os
import random
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import PROJECT, fetch_settings, store_of
from s3_server import BUCKET, signed_client

from abc_downsample.cache.download import fetch_file
from abc_downsample.cache.layout import cache_path, read_receipt
from abc_downsample.cache.verify import check_cached, is_stamped
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import FileEntry

KEY = "test_download/expression_matrices/WMB-10Xv3/20230630/WMB-10Xv3-TH-raw.h5ad"
SIZE = 6 * 1024 * 1024 + 12345
PART = 256 * 1024
SCRIPTS = PROJECT / "scripts"


@pytest.fixture(scope="module")
def payload():
    return random.Random(11).randbytes(SIZE)


@pytest.fixture(scope="module")
def md5(payload):
    return hashlib.md5(payload).hexdigest()


@pytest.fixture(scope="module")
def s3(s3_endpoint, payload):
    """The shared moto server (tests/conftest.py), with our file added to its bucket."""
    signed_client(s3_endpoint).put_object(Bucket=BUCKET, Key=KEY, Body=payload, ACL="public-read")
    return s3_endpoint


@pytest.fixture
def dest(tmp_path):
    return cache_path(tmp_path / "abc_data", KEY)


def fetch(proxy, dest, md5, **kwargs):
    store = store_of(BUCKET, proxy.url, retries=kwargs.pop("store_retries", 5))
    options = {"part_size": PART, "max_concurrency": 4, "retries": 3} | kwargs
    fetch_file(store, KEY, dest, size=SIZE, md5=md5, **fetch_settings(**options))


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name + ".lock")


def test_clean_download_is_verified_and_renamed(proxy, dest, payload, md5):
    fetch(proxy, dest, md5)
    assert dest.read_bytes() == payload
    assert leftovers(dest) == [dest.name]  # no .part, no resume record
    assert proxy.bytes_served == SIZE
    assert not list(dest.parents[len(KEY.split("/")) - 1].rglob("_downloaded_data.json"))


@pytest.mark.parametrize(
    "fault",
    [
        {"fail_first": 4},
        {"cut_first": 5, "cut_after": 1000},
        {"corrupt_once": True},
        {"fail_first": 2, "cut_first": 3, "corrupt_once": True},
    ],
    ids=["5xx", "cut-connections", "corrupt-byte", "all"],
)
def test_faults_end_in_a_correct_file(proxy, dest, payload, md5, fault):
    for name, value in fault.items():
        setattr(proxy, name, value)
    fetch(proxy, dest, md5)
    assert hashlib.md5(dest.read_bytes()).hexdigest() == md5
    assert leftovers(dest) == [dest.name]
    if fault.get("corrupt_once"):
        assert proxy.bytes_served >= 2 * SIZE  # the bad file was fetched again, whole


def test_md5_mismatch_twice_is_an_error_and_leaves_no_file(proxy, dest, payload):
    with pytest.raises(AbcError, match=r"downloaded twice with MD5 .*the manifest says 0+"):
        fetch(proxy, dest, "0" * 32)
    assert not dest.exists()
    assert proxy.bytes_served == 2 * SIZE


def test_size_disagreeing_with_the_bucket_is_an_error(proxy, dest, md5):
    store = store_of(BUCKET, proxy.url)
    with pytest.raises(AbcError, match=rf"is {SIZE} bytes in .*the manifest says {SIZE + 1}"):
        fetch_file(store, KEY, dest, size=SIZE + 1, md5=md5, **fetch_settings())
    assert proxy.bytes_served == 0
    assert not dest.exists()


def test_failure_after_the_last_retry_names_file_and_cause(proxy, dest, md5):
    proxy.fail_first = 10_000
    proxy.fail_methods = ("GET",)  # the size check passes, every part fails
    store = store_of(BUCKET, proxy.url, retries=2)
    with pytest.raises(AbcError) as err:
        settings = fetch_settings(part_size=PART, retries=2)
        fetch_file(store, KEY, dest, size=SIZE, md5=md5, **settings)
    message = str(err.value)
    assert KEY in message and str(dest) in message and "HTTP 50" in message
    assert "rerun to resume" in message and "\n" not in message
    assert not dest.exists()


def test_existing_good_file_is_kept_without_a_request(proxy, dest, payload, md5):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(payload)
    fetch(proxy, dest, md5, verify_existing="md5")
    assert proxy.requests == 0


def test_existing_wrong_file_is_replaced(proxy, dest, payload, md5):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"x" * 10)
    fetch(proxy, dest, md5)
    assert dest.read_bytes() == payload


def test_stale_resume_record_is_ignored(proxy, dest, payload, md5):
    dest.parent.mkdir(parents=True)
    Path(f"{dest}.part").write_bytes(b"\0" * SIZE)
    record = {"key": KEY, "size": SIZE, "md5": "f" * 32, "part_size": PART, "done": [0, 1, 2]}
    Path(f"{dest}.part.json").write_text(json.dumps(record))
    fetch(proxy, dest, md5)
    assert dest.read_bytes() == payload
    assert proxy.bytes_served == SIZE


def test_progress_is_logged(proxy, dest, md5, caplog):
    logger = logging.getLogger("test.download")
    with caplog.at_level(logging.INFO, logger="test.download"):
        fetch(
            proxy,
            dest,
            md5,
            part_size=64 * 1024,
            max_concurrency=2,
            log=logger,
            progress_seconds=0.001,
        )
    lines = [r.getMessage() for r in caplog.records]
    assert any(re.search(r" of 6.3 MB \(\d+%\), [\d.]+ MB/s, \d+m\d\ds left$", line)
               for line in lines), lines  # fmt: skip
    assert any("MD5 ok" in line for line in lines)


def test_a_matrix_download_says_its_progress_on_the_terminal(proxy, dest, md5, capfd):
    """One line each time, bytes of the file and time left (issue 22: progress a user
    can follow); metadata downloads keep it to their log."""
    fetch(proxy, dest, md5, part_size=64 * 1024, max_concurrency=2, progress_seconds=0.001,
          progress_terminal=True)  # fmt: skip
    said = [line for line in capfd.readouterr().err.splitlines()
            if line.startswith(f"abc-downsample: download {KEY}: ")]  # fmt: skip
    assert said and all(re.search(r" of 6.3 MB \(\d+%\), .* left$", line) for line in said)
    dest.unlink()
    fetch(proxy, dest, md5, part_size=64 * 1024, max_concurrency=2, progress_seconds=0.001)
    assert "abc-downsample: download" not in capfd.readouterr().err


@pytest.mark.parametrize("size", [0, 1, PART, PART + 1])
def test_edge_sizes_from_a_local_mirror(tmp_path, size):
    body = random.Random(size).randbytes(size)
    (tmp_path / "mirror" / "d").mkdir(parents=True)
    (tmp_path / "mirror" / "d" / "f.bin").write_bytes(body)
    dest = tmp_path / "cache" / "d" / "f.bin"
    store = store_of(str(tmp_path / "mirror"))
    md5 = hashlib.md5(body).hexdigest()
    fetch_file(store, "d/f.bin", dest, size=size, md5=md5,
               **fetch_settings(part_size=PART, max_concurrency=3))
    assert dest.read_bytes() == body
    assert leftovers(dest) == [dest.name]


# -- several processes ------------------------------------------------------------------

CHILD = """
import sys
from abc_downsample.cache.download import fetch_file
from abc_downsample.cache.store import store_from_config
from abc_downsample.config_check import abc_with_defaults
endpoint, key, dest, size, md5, part = sys.argv[1:7]
abc = abc_with_defaults({"bucket": "allen-brain-cell-atlas", "endpoint_url": endpoint})
fetch_file(store_from_config(abc), key, dest, size=int(size), md5=md5, part_size=int(part),
           max_concurrency=4, retries=abc["download"]["retries"])
"""


def spawn(proxy, dest, md5, part=PART) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SCRIPTS))
    args = [proxy.url, KEY, str(dest), str(SIZE), md5, str(part)]
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env)


def wait_until(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_killed_download_resumes_from_the_bytes_on_disk(proxy, dest, payload, md5):
    proxy.hold_at(SIZE // 2)
    child = spawn(proxy, dest, md5)
    wait_until(lambda: proxy.bytes_served >= SIZE // 2 and proxy.in_flight == 0)
    time.sleep(0.3)  # let the child record the parts it has written
    child.kill()
    child.wait()
    proxy.reset()
    assert not dest.exists()
    record = json.loads(Path(f"{dest}.part.json").read_text())
    assert record["done"], "the first run recorded no finished part"

    fetch(proxy, dest, md5)
    assert dest.read_bytes() == payload
    assert proxy.bytes_served <= 0.6 * SIZE


def test_parallel_jobs_on_one_cache_end_with_one_correct_file(proxy, dest, payload, md5):
    children = [spawn(proxy, dest, md5) for _ in range(4)]
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0, 0]
    assert dest.read_bytes() == payload
    assert leftovers(dest) == [dest.name]
    assert proxy.bytes_served == SIZE  # one job downloaded; the others took its file


# -- the rule script ----------------------------------------------------------------------


def test_rule_script_downloads_from_a_local_mirror(tmp_path, payload, md5):
    mirror = tmp_path / "mirror"
    (mirror / KEY).parent.mkdir(parents=True)
    (mirror / KEY).write_bytes(payload)
    entry = {"relative_path": KEY, "size": SIZE, "file_hash": md5, "version": "20230630"}
    matrix = {"raw": {"files": {"h5ad": entry}}}
    manifest = {
        "version": "20250531",
        "resource_uri": "s3://allen-brain-cell-atlas/",
        "directory_listing": {},
        "file_listing": {"WMB-10Xv3": {"expression_matrices": {"WMB-10Xv3-TH": matrix}}},
    }
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    out = cache_path(tmp_path / "cache", KEY)
    receipt = tmp_path / "receipt.json"
    smk = SimpleNamespace(
        input=SimpleNamespace(manifest=str(manifest_path)),
        output=[str(receipt)],
        params=SimpleNamespace(relative_path=KEY),
        config={
            "abc": abc_with_defaults(
                {
                    "bucket": str(mirror),
                    "cache_dir": str(tmp_path / "cache"),
                    "download": {"part_size_mb": 1, "max_concurrency": 3, "retries": 2},
                }
            )
        },
        log=[str(tmp_path / "download.log")],
    )
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        runpy.run_path(str(SCRIPTS / "download_metadata.py"), init_globals={"snakemake": smk})
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert out.read_bytes() == payload
    assert "MD5 ok" in (tmp_path / "download.log").read_text()
    assert read_receipt(receipt) == FileEntry("", "", "", None, KEY, SIZE, md5, "")
    assert is_stamped(tmp_path / "cache", read_receipt(receipt)), "verified once, stamped"


# -- files already in the cache -------------------------------------------------------------


def test_check_cached_accepts_a_good_file(tmp_path, payload, md5):
    path = tmp_path / "f.h5ad"
    path.write_bytes(payload)
    check_cached(path, SIZE, md5, "size")
    check_cached(path, SIZE, md5, "md5")


def test_check_cached_wrong_size_says_delete(tmp_path, payload, md5):
    path = tmp_path / "f.h5ad"
    path.write_bytes(payload[:-1])
    with pytest.raises(AbcError, match=rf"is {SIZE - 1} bytes, the manifest says {SIZE}: delete"):
        check_cached(path, SIZE, md5, "size")
    assert path.stat().st_size == SIZE - 1  # never touched


def test_check_cached_md5_only_when_asked(tmp_path, payload, md5):
    path = tmp_path / "f.h5ad"
    path.write_bytes(bytes([payload[0] ^ 1]) + payload[1:])  # same size, other content
    check_cached(path, SIZE, md5, "size")
    with pytest.raises(AbcError, match="MD5 .* the manifest says .*delete it"):
        check_cached(path, SIZE, md5, "md5")


def test_check_cached_missing_file_and_bad_mode(tmp_path):
    with pytest.raises(AbcError, match="missing from the cache"):
        check_cached(tmp_path / "absent", 1, None, "size")
    with pytest.raises(AbcError, match="abc.verify"):
        check_cached(tmp_path / "absent", 1, None, "sha1")


def test_cache_path_layout_and_escapes(tmp_path):
    assert cache_path(tmp_path, KEY) == tmp_path.joinpath(*KEY.split("/"))
    for bad in ("../etc/passwd", "/abs/path", ""):
        with pytest.raises(AbcError, match="not a relative path"):
            cache_path(tmp_path, bad)
