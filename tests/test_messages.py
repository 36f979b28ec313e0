"""Errors that name the real problem and the real fix, in one line (issue 11, finding 8)."""

import errno
import json
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import SYNTHETIC_ARGS, run_snakemake
from s3_server import MotoServer, upload_tree

from abc_downsample.cache.verify import file_md5
from abc_downsample.demo.release import write_release
from abc_downsample.errors import AbcError
from abc_downsample.rule_io import run
from abc_downsample.sampling.sample import sample_cells
from abc_downsample.units import size_text

CELLS = "metadata/WMB-10X/20241115/cell_metadata.csv"
PIVOTED = (
    "metadata/WMB-taxonomy/20231215/views/cluster_to_cluster_annotation_membership_pivoted.csv"
)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device", "data/x.h5ad"),
        # h5py's form: errno unset, the reason inside its message
        OSError("Can't write data (file write failed: errno = 28, error message = "
                "'No space left on device')"),  # fmt: skip
    ],
)
def test_a_full_disk_is_one_line(error, capfd, tmp_path, rule_logging):
    def main():
        raise error

    with pytest.raises(SystemExit) as exit_:
        run(main, str(tmp_path / "job.log"))
    assert exit_.value.code == 1
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abc-downsample: error: the disk is full")
    assert "free space" in lines[0]


def test_sizes_in_messages_keep_their_scale():
    assert size_text(3_400_000) == "3.4 MB"
    assert size_text(2_500_000_000) == "2.5 GB"
    assert size_text(512) == "512 bytes"


def test_a_cell_table_without_cluster_alias_names_the_table(tmp_path, synthetic_release):
    root = synthetic_release["root"]
    cells = pd.read_csv(f"{root}/{CELLS}").drop(columns="cluster_alias")
    cells.to_csv(tmp_path / "cell_metadata.csv", index=False)
    with pytest.raises(AbcError) as err:
        sample_cells(tmp_path / "cell_metadata.csv", f"{root}/{PIVOTED}", {"target_cells": 100})
    message = str(err.value)
    assert "lacks the column(s) 'cluster_alias'" in message and "cell_metadata.csv" in message
    assert "sampling.cluster_column" not in message


@pytest.mark.e2e
def test_dense_matrix_in_download_mode_is_one_line(tmp_path):
    """A matrix whose X is dense: the job (not a resource function) says so in one line."""
    info = write_release(tmp_path / "bucket", **SYNTHETIC_ARGS)
    label, spec = next(iter(info["matrices"].items()))
    path = tmp_path / "bucket" / spec["raw"]
    adata = ad.read_h5ad(path)
    adata.X = np.asarray(adata.X.todense())
    adata.write_h5ad(path)
    for release in (info["release"], info["old_release"]):
        manifest_path = tmp_path / "bucket" / "releases" / release / "manifest.json"
        text = manifest_path.read_text()
        old = info["files"][spec["raw"]]
        text = text.replace(old["md5"], file_md5(path).hexdigest()).replace(
            f'"size": {old["size"]}', f'"size": {path.stat().st_size}'
        )
        json.loads(text)
        manifest_path.write_text(text)
    server = MotoServer()
    try:
        upload_tree(server.url, tmp_path / "bucket")
        shutil.rmtree(tmp_path / "bucket")
        config = {
            "abc": {"endpoint_url": server.url, "release": info["release"], "transfer": "download"},
            "sampling": {"target_cells": 1500, "min_cluster_size": 50},
        }
        result = run_snakemake(tmp_path / "work", f"data/subsets/{label}.h5ad", config=config)
    finally:
        server.stop()
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "InputFunctionException" not in output
    errors = [line for line in output.splitlines() if "abc-downsample: error:" in line]
    assert errors and "not a CSR matrix" in errors[-1], output[-3000:]
