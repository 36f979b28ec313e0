"""First use of a cache another tool filled (issue 25): sampling checks the cached matrices
its population may take (MD5, once each, under the file's lock) on its other threads; the
subset jobs then find them stamped and read no file twice."""

import logging
import re
from concurrent.futures import wait
from pathlib import Path

import pytest
from conftest import filled_cache

from abc_downsample.cache.background import verify_matrices
from abc_downsample.cache.layout import cache_path
from abc_downsample.cache.verify import is_stamped
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.release.manifest import Manifest

log = logging.getLogger("test_perf_verify")


def matrices(manifest: Manifest) -> list:
    return [e for e in manifest.entries if e.kind == "expression_matrices" and e.variant == "raw"]


@pytest.fixture
def cache(tmp_path, synthetic_release):
    return filled_cache(synthetic_release, tmp_path / "cache")


@pytest.fixture
def manifest(synthetic_release):
    return Manifest.load(Path(synthetic_release["root"]) / synthetic_release["manifest"])


def test_each_cached_matrix_is_checked_once_and_stamped(cache, manifest):
    abc = abc_with_defaults({"cache_dir": str(cache)})
    entries = matrices(manifest)
    labels = [e.name for e in entries]
    verifier = verify_matrices(abc, manifest, labels, 2, log)
    wait(verifier.futures)  # as sampling takes longer than these small files
    line = verifier.finish()
    assert all(is_stamped(cache, e) for e in entries)
    assert re.search(rf"checked the MD5 of {len(entries)} cached matrices .* MB/s per core", line)
    assert verify_matrices(abc, manifest, labels, 2, log) is None, "never twice"


def test_a_corrupt_matrix_is_not_stamped(cache, manifest, caplog):
    abc = abc_with_defaults({"cache_dir": str(cache)})
    bad, *good = matrices(manifest)
    path = cache_path(cache, bad.relative_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.unlink()  # a hard link: the bucket's copy stays whole
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        verifier = verify_matrices(abc, manifest, [e.name for e in (bad, *good)], 1, log)
        wait(verifier.futures)
        verifier.finish()
    assert not is_stamped(cache, bad) and all(is_stamped(cache, e) for e in good)
    assert "the manifest says" in caplog.text


def test_files_not_reached_are_left_whole_to_their_jobs(cache, manifest):
    abc = abc_with_defaults({"cache_dir": str(cache)})
    entries = matrices(manifest)
    verifier = verify_matrices(abc, manifest, [e.name for e in entries], 1, log)
    line = verifier.finish()  # at once: the first under way is finished, the rest left
    checked = int(re.search(r"checked the MD5 of (\d+)", line)[1])
    left = int(re.search(r"(\d+) left to their jobs", line)[1])
    assert checked + left == len(entries) and checked >= 1
    assert sum(is_stamped(cache, e) for e in entries) == checked


@pytest.mark.parametrize("change", [{"transfer": "stream"}, {"verify": "md5"}, {"verify": "size"}])
def test_nothing_is_checked_where_no_job_would_trust_a_stamp(cache, manifest, change):
    abc = abc_with_defaults({"cache_dir": str(cache), **change})
    assert verify_matrices(abc, manifest, [e.name for e in matrices(manifest)], 2, log) is None


