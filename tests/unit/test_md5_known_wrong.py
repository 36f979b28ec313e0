"""A file whose manifest MD5 is wrong upstream (the consensus taxonomy's term-set table at
20251031): the error names the file and the setting that accepts it; the setting accepts it
after a size check, with a warning each time; nothing else is accepted without its MD5."""

import hashlib
import logging

import pytest

from abc_downsample.cache.download import use_cached
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import FileEntry

KEY = "metadata/Consensus-WMB-integrated-taxonomy/20251031/cluster_annotation_term_set.csv"
DATA = b"label,name,description,order\nL0,class,the classes,0\n"


@pytest.fixture
def mirror(tmp_path):
    """A local mirror holding the file; the cache elsewhere."""
    path = tmp_path / "bucket" / KEY
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA)
    return tmp_path


def entry(md5: str, size: int = len(DATA)) -> FileEntry:
    return FileEntry("Consensus-WMB-integrated-taxonomy", "metadata",
                     "cluster_annotation_term_set", None, KEY, size, md5, "20251031")  # fmt: skip


def abc(mirror, known_wrong=()):
    return abc_with_defaults({"bucket": str(mirror / "bucket"), "cache_dir": str(mirror / "cache"),
                              "md5_known_wrong": list(known_wrong),
                              "download": {"retries": 1}})  # fmt: skip


WRONG = hashlib.md5(b"what the manifest says").hexdigest()


def test_a_wrong_md5_names_the_file_and_the_setting(mirror):
    with pytest.raises(AbcError) as err:
        use_cached(entry(WRONG), abc(mirror))
    message = str(err.value)
    assert KEY in message and "abc.md5_known_wrong" in message and "\n" not in message
    assert not (mirror / "cache" / KEY).exists(), "nothing accepted"


def test_the_setting_accepts_it_after_a_size_check_with_a_warning(mirror, caplog):
    with caplog.at_level(logging.WARNING):
        path = use_cached(entry(WRONG), abc(mirror, [KEY]))
        assert path.read_bytes() == DATA
        use_cached(entry(WRONG), abc(mirror, [KEY]))  # again: cached, still said
    warnings = [r.getMessage() for r in caplog.records if "abc.md5_known_wrong" in r.getMessage()]
    assert len(warnings) == 2 and KEY in warnings[0]


def test_the_setting_does_not_accept_a_wrong_size(mirror):
    with pytest.raises(AbcError, match="bytes"):
        use_cached(entry(WRONG, size=len(DATA) + 1), abc(mirror, [KEY]))


def test_other_files_keep_their_md5_check(mirror):
    with pytest.raises(AbcError, match="downloaded twice"):
        use_cached(entry(WRONG), abc(mirror, ["metadata/another/file.csv"]))


MATRIX = "expression_matrices/WMB-10Xv3/20251031/WMB-10Xv3-TH-raw.h5ad"


def test_once_accepted_it_is_trusted_from_its_stamp_without_a_read(mirror, tmp_path, monkeypatch):
    """A listed file accepted once is trusted after a stat, as any stamped file: its receipt
    is written while the workflow is read, and sampling does not read it again."""
    from abc_downsample.cache import verify
    from abc_downsample.cache.background import verify_matrices
    from abc_downsample.release.manifest import Manifest

    (mirror / "bucket" / MATRIX).parent.mkdir(parents=True)
    (mirror / "bucket" / MATRIX).write_bytes(DATA)
    listing = {"relative_path": MATRIX, "size": len(DATA), "file_hash": WRONG}
    manifest = Manifest({"version": "20251031", "directory_listing": {}, "file_listing": {
        "WMB-10Xv3": {"expression_matrices": {"WMB-10Xv3-TH": {"raw": {"files": {
            "h5ad": listing}}}}}}})  # fmt: skip
    config = abc(mirror, [KEY, MATRIX])
    metadata, matrix = entry(WRONG), manifest.matrix_file("WMB-10Xv3-TH", "raw")
    for accepted in (metadata, matrix):
        use_cached(accepted, config)

    def no_read(*args, **kwargs):
        raise AssertionError("a file trusted from its stamp was read")

    monkeypatch.setattr(verify, "file_md5", no_read)
    receipt = tmp_path / "receipts" / "table.json"
    assert verify.receipt_if_trusted(receipt, metadata, config) and receipt.exists()
    assert verify_matrices(config, manifest, ["WMB-10Xv3-TH"], 1, logging.getLogger()) is None
    assert use_cached(matrix, config).read_bytes() == DATA
