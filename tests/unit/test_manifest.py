import json

import pytest

from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import Manifest, manifest_key, newest_release


def _entry(path, size=10, md5="0" * 32):
    return {"version": path.split("/")[2], "relative_path": path, "size": size, "file_hash": md5}


MANIFEST = {
    "version": "20250531",
    "resource_uri": "s3://allen-brain-cell-atlas/",
    "directory_listing": {
        "WMB-10X": {"directories": {"metadata": {"version": "20241115"}}},
        "WMB-10Xv3": {"directories": {"expression_matrices": {"version": "20230630"}}},
    },
    "file_listing": {
        "WMB-10X": {
            "metadata": {
                "cell_metadata": {
                    "files": {"csv": _entry("metadata/WMB-10X/20241115/cell_metadata.csv", 99)}
                }
            }
        },
        "WMB-10Xv3": {
            "expression_matrices": {
                "WMB-10Xv3-MB": {
                    v: {
                        "files": {
                            "h5ad": _entry(
                                f"expression_matrices/WMB-10Xv3/20230630/WMB-10Xv3-MB-{v}.h5ad"
                            )
                        }
                    }
                    for v in ("raw", "log2")
                }
            }
        },
    },
}


def test_lookups_cover_both_entry_shapes():
    m = Manifest(MANIFEST)
    assert m.metadata_file("WMB-10X", "cell_metadata").size == 99
    log2 = m.matrix_file("WMB-10Xv3-MB", "log2")
    assert log2.relative_path.endswith("WMB-10Xv3-MB-log2.h5ad")
    assert m.entry_for(log2.relative_path) == log2
    assert m.directory_versions()["WMB-10Xv3"] == {"expression_matrices": "20230630"}
    assert len(m.entries) == 3


def test_unknown_names_are_one_line_errors():
    m = Manifest(MANIFEST)
    with pytest.raises(AbcError, match="no raw matrix WMB-10Xv3-XX"):
        m.matrix_file("WMB-10Xv3-XX", "raw")
    with pytest.raises(AbcError, match="not listed"):
        m.entry_for("metadata/nope.csv")


def test_load_rejects_what_is_not_a_manifest(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(AbcError, match="not valid JSON"):
        Manifest.load(bad)
    bad.write_text(json.dumps({"version": "1"}))
    with pytest.raises(AbcError, match="no 'file_listing'"):
        Manifest.load(bad)


def test_newest_release_is_the_lexicographic_maximum():
    keys = [manifest_key(r) for r in ("20230630", "20250531", "20241115")] + ["releases/x.txt"]
    assert newest_release(keys) == "20250531"
    with pytest.raises(AbcError, match="no releases"):
        newest_release(["metadata/a.csv"])
