"""Errors a job meets under the real snakemake: one line, the last on screen."""

import json
import shutil

import anndata as ad
import numpy as np
from conftest import SYNTHETIC_ARGS, run_snakemake
from s3_server import MotoServer, upload_tree

from abc_downsample.cache.verify import file_md5
from abc_downsample.demo.release import write_release


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
