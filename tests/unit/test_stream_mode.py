"""Stream mode end to end: the subset read by byte ranges from S3 equals download mode's.

The session's synthetic release (real h5ad layout: contiguous WMB-10Xv2 files, chunked+gzip
WMB-10Xv3) is served by a real moto S3 server (conftest's ``s3_endpoint``); the same
sample is subset from the local files (download mode) and from the bucket (stream mode),
and the outputs are compared.
"""

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import fetch_settings, store_of
from h5_compare import assert_same_h5
from s3_server import BUCKET
from synthetic_paths import CELLS

from abc_downsample.config_check import abc_with_defaults
from abc_downsample.errors import AbcError
from abc_downsample.subset.job import subset_from_config, subset_remote
from abc_downsample.subset.local import subset_local_file
from abc_downsample.units import size_text


@pytest.fixture(scope="module")
def release(synthetic_release):
    return synthetic_release


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    return s3_endpoint


@pytest.fixture(scope="module")
def cells_csv(release, tmp_path_factory):
    """A sample: a random fifth of each matrix's metadata cells, in a shuffled order."""
    cells = pd.read_csv(
        f"{release['root']}/{CELLS}",
        usecols=["cell_label", "feature_matrix_label"],
        dtype=str,
    )
    sample = cells.sample(frac=0.2, random_state=11)
    path = tmp_path_factory.mktemp("sample") / "downsampled_cells.csv"
    sample.to_csv(path, index=False)
    return path


def raw_key(release, matrix: str) -> str:
    return release["matrices"][matrix]["raw"]


def matrix_in_a_cache(release, tmp_path, matrix="WMB-10Xv3-MB"):
    """A copy of ``matrix``'s raw file in a cache of its own, not stamped: (matrix, key,
    manifest entry, cache, cached file)."""
    from abc_downsample.cache.layout import cache_path
    from abc_downsample.release.manifest import Manifest

    key = raw_key(release, matrix)
    entry = Manifest.load(f"{release['root']}/{release['manifest']}").entry_for(key)
    cache = tmp_path / "abc_data"
    cached = cache_path(cache, key)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(Path(release["root"], key).read_bytes())
    return matrix, key, entry, cache, cached


@pytest.mark.parametrize("matrix", ["WMB-10Xv2-TH", "WMB-10Xv3-MB"])
def test_stream_subset_is_bit_identical_to_download_subset(
    release, proxy, cells_csv, tmp_path, matrix
):
    key = raw_key(release, matrix)
    local_out, remote_out = tmp_path / "download.h5ad", tmp_path / "stream" / "subset.h5ad"
    local = subset_local_file(f"{release['root']}/{key}", cells_csv, local_out, matrix)
    proxy.reset()
    store = store_of(BUCKET, proxy.url)
    remote = subset_remote(
        store, key, cells_csv, remote_out, matrix, max_concurrency=32, merge_gap_kb=1
    )
    assert remote.rows == local.rows > 0 and remote.nnz == local.nnz
    assert_same_h5(local_out, remote_out)
    assert remote_out.read_bytes() == local_out.read_bytes()
    # the job wrote its output and nothing else; its byte count is what the server sent
    assert [p.name for p in remote_out.parent.iterdir()] == ["subset.h5ad"]
    assert remote.bytes_read == proxy.bytes_served


def test_stream_subset_logs_bytes_requests_and_size(release, s3, cells_csv, tmp_path, caplog):
    key = raw_key(release, "WMB-10Xv3-HPF")
    stream = {"max_concurrency": 4}
    abc = abc_with_defaults({"bucket": BUCKET, "endpoint_url": s3, "stream": stream})
    with caplog.at_level("INFO", logger="abc_downsample"):
        stats = subset_from_config(abc, key, cells_csv, tmp_path / "s.h5ad", "WMB-10Xv3-HPF")
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("stream "))
    assert f"fetched {stats.bytes_read / 1e6:,.1f} MB" in line and "requests" in line
    assert key in line


def test_a_cell_missing_from_the_remote_file_is_one_line(release, s3, tmp_path):
    cells = tmp_path / "cells.csv"
    cells.write_text("cell_label,feature_matrix_label\nNO-SUCH-CELL,WMB-10Xv2-TH\n")
    store = store_of(BUCKET, s3)
    out = tmp_path / "out.h5ad"
    with pytest.raises(AbcError, match="'NO-SUCH-CELL' missing from WMB-10Xv2-TH-raw.h5ad"):
        subset_remote(
            store,
            raw_key(release, "WMB-10Xv2-TH"),
            cells,
            out,
            "WMB-10Xv2-TH",
            max_concurrency=32,
            merge_gap_kb=64,
        )
    assert not out.exists() and list(tmp_path.iterdir()) == [cells]


# -- abc.transfer: auto ---------------------------------------------------------------------

# a link on which a few large requests win (slow round trips) and one on which fetching
# only the rows wins (a slow link, fast round trips)
SLOW_ROUND_TRIPS = {"latency_ms": 2000, "connection_mbps": 1000, "total_mbps": 1000}
SLOW_LINK = {"latency_ms": 1, "connection_mbps": 0.5, "total_mbps": 0.5}


@pytest.mark.parametrize(
    ("matrix", "link", "expected"),
    [
        ("WMB-10Xv2-TH", SLOW_LINK, "stream"),
        ("WMB-10Xv3-MB", SLOW_LINK, "stream"),
        ("WMB-10Xv2-TH", SLOW_ROUND_TRIPS, "download"),
        ("WMB-10Xv3-MB", SLOW_ROUND_TRIPS, "download"),
    ],
)
def test_auto_picks_the_cheaper_transfer_and_logs_its_plan(
    release, s3, cells_csv, tmp_path, caplog, matrix, link, expected
):
    from abc_downsample.cache.download import fetch_file

    key = raw_key(release, matrix)
    fetched = []

    def fetch_cached():
        dest = tmp_path / "cache" / key
        fetch_file(
            store_of(BUCKET, s3), key, dest, size=store.size(key), md5=None, **fetch_settings()
        )
        fetched.append(dest)
        return dest

    store = store_of(BUCKET, s3)
    abc = abc_with_defaults({
        "bucket": BUCKET,
        "endpoint_url": s3,
        "transfer": "auto",
        "link": link,
        "stream": {"max_concurrency": 4, "merge_gap_kb": 0},
    })  # fmt: skip
    out = tmp_path / "auto.h5ad"
    with caplog.at_level("INFO", logger="abc_downsample"):
        stats = subset_from_config(abc, key, cells_csv, out, matrix, fetch_cached=fetch_cached)
    plans = [r.getMessage() for r in caplog.records if r.getMessage().startswith("auto ")]
    assert len(plans) == 1 and plans[0].endswith(f": {expected}")
    assert "requests" in plans[0] and "download" in plans[0]
    assert len(fetched) == (expected == "download")
    local = subset_local_file(f"{release['root']}/{key}", cells_csv, tmp_path / "d.h5ad", matrix)
    assert stats.rows == local.rows
    assert out.read_bytes() == (tmp_path / "d.h5ad").read_bytes()


@pytest.mark.parametrize("stamped", [True, False], ids=["ours", "another-tool"])
def test_auto_reads_a_matrix_in_the_cache_without_any_transfer(
    release, cells_csv, tmp_path, stamped
):
    """A project joining a filled cache (ours, stamped; or abc_atlas_access's, checked here
    against the manifest's MD5): auto uses the file with no request at all (the endpoint is
    closed) and, not having fetched it, leaves it there (keep_matrices false)."""
    from abc_downsample.cache.verify import is_stamped, write_stamp
    from abc_downsample.subset.job import subset_matrix_file

    matrix, key, entry, cache, cached = matrix_in_a_cache(release, tmp_path)
    if stamped:
        write_stamp(cache, entry)
    abc = abc_with_defaults({
        "bucket": BUCKET,
        "endpoint_url": "http://127.0.0.1:9",  # nothing listens: any request would fail
        "cache_dir": str(cache),
        "transfer": "auto",
        "keep_matrices": False,
        "download": {"retries": 1},
    })  # fmt: skip
    out = tmp_path / "auto.h5ad"
    stats = subset_matrix_file(abc, entry, cells_csv, out, matrix)
    local = subset_local_file(f"{release['root']}/{key}", cells_csv, tmp_path / "d.h5ad", matrix)
    assert stats.rows == local.rows > 0
    assert out.read_bytes() == (tmp_path / "d.h5ad").read_bytes()
    assert cached.exists() and is_stamped(cache, entry)


@pytest.mark.parametrize("transfer", ["download", "auto"])
def test_a_cached_matrix_is_checked_without_credentials(
    release, cells_csv, tmp_path, monkeypatch, transfer
):
    """abc.anonymous false and no AWS credentials anywhere: a matrix in the cache, not yet
    stamped, is checked against the manifest's MD5 and used; no client is made (making one
    looks the credentials up, and fails)."""
    from abc_downsample.cache.download import use_cached
    from abc_downsample.cache.verify import is_stamped
    from abc_downsample.subset.job import subset_matrix_file

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    matrix, key, entry, cache, cached = matrix_in_a_cache(release, tmp_path)
    abc = abc_with_defaults({
        "bucket": BUCKET,
        "endpoint_url": "http://127.0.0.1:9",  # nothing listens: any request would fail
        "anonymous": False,
        "cache_dir": str(cache),
        "transfer": transfer,
        "download": {"retries": 1},
    })  # fmt: skip
    out = tmp_path / "cached.h5ad"
    stats = subset_matrix_file(abc, entry, cells_csv, out, matrix)
    local = subset_local_file(f"{release['root']}/{key}", cells_csv, tmp_path / "d.h5ad", matrix)
    assert stats.rows == local.rows > 0 and stats.transfer == "cache"
    assert out.read_bytes() == (tmp_path / "d.h5ad").read_bytes()
    assert is_stamped(cache, entry)
    abc["verify"] = "md5"  # read on every use: checked again, still no client
    assert use_cached(entry, abc) == cached


def test_stream_progress_says_bytes_of_the_planned_and_time_left(
    release, s3, cells_csv, tmp_path, capfd, monkeypatch, rule_logging
):
    """A long stream job says, per matrix, its rows' bytes so far of those planned and the
    time left: in its log and on the terminal, at most every PROGRESS_SECONDS (here every
    arrival); a short one says nothing."""
    from abc_downsample.cache import progress
    from abc_downsample.rule_io import setup_logging

    key, matrix = raw_key(release, "WMB-10Xv3-HPF"), "WMB-10Xv3-HPF"
    setup_logging(str(tmp_path / "job.log"))
    store = store_of(BUCKET, s3)
    subset_remote(
        store, key, cells_csv, tmp_path / "quiet.h5ad", matrix, max_concurrency=2, merge_gap_kb=64
    )
    assert "stream" not in capfd.readouterr().err  # under 10 s: no progress lines

    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)
    stats = subset_remote(
        store, key, cells_csv, tmp_path / "s.h5ad", matrix, max_concurrency=2, merge_gap_kb=64
    )
    pattern = (rf"^abc-downsample: stream {matrix}: ([\d.]+ \w+) of ([\d.]+ \w+) \((\d+)%\), "
               r"[\d.]+ MB/s, \d+m\d\ds left$")  # fmt: skip
    said = [re.match(pattern, line) for line in capfd.readouterr().err.splitlines()]
    said = [match for match in said if match]
    assert len(said) >= 2 and len({m[2] for m in said}) == 1, "one planned total"
    assert [int(m[3]) for m in said] == sorted(int(m[3]) for m in said) and int(said[-1][3]) > 50
    assert said[-1][2] == size_text(stats.row_bytes)  # planned: the rows' bytes fetched
    logged = (tmp_path / "job.log").read_text()
    assert logged.count(f"stream {matrix}: ") >= len(said)
