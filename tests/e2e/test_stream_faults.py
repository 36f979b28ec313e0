"""Stream mode under network faults, each job in its own process bounded in time.

Files as anndata writes them (``AnnData.write_h5ad``: X chunked with h5py's automatic chunk
size, uncompressed), contiguous and gzip-chunked, served by a real moto S3 server behind
the fault proxy. Under 503s, cut connections and stalls every job must finish with the
clean result; with bytes flipped in the rows' ranges over plain http a job must fail with
one line or (if no flip landed in what it read) give the clean result, never another.
"""

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import PROJECT
from s3_server import BUCKET, MotoServer, upload_tree

from abc_downsample.stream.layout import dataset_layout
from abc_downsample.subset.local import subset_local_file

PREFIX = "expression_matrices/WMB-fault/20230630"
MATRIX = "WMB-fault"
JOB = PROJECT / "tests" / "stream_job.py"
N_CELLS, N_GENES = 3000, 2000
JOB_SECONDS = 90  # a job that has not ended by then hangs


def counts_matrix(seed: int = 4) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    per_row = rng.integers(20, 280, N_CELLS)
    indptr = np.r_[0, np.cumsum(per_row)]
    indices = np.concatenate([np.sort(rng.choice(N_GENES, n, replace=False)) for n in per_row])
    data = rng.geometric(0.3, indptr[-1]).astype(np.float32)
    return sp.csr_matrix((data, indices.astype(np.int32), indptr), shape=(N_CELLS, N_GENES))


def write_layouts(folder: Path) -> dict[str, Path]:
    """The same AnnData written three ways: {layout: path}."""
    obs = pd.DataFrame(
        {"library_label": pd.Categorical(np.resize(["L1", "L2"], N_CELLS))},
        index=pd.Index([f"CELL{i:06d}-F" for i in range(N_CELLS)], name="cell_label"),
    )
    var = pd.DataFrame(index=pd.Index([f"ENSMUSG{i:011d}" for i in range(N_GENES)]))
    adata = ad.AnnData(counts_matrix(), obs=obs, var=var)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}-raw.h5ad" for name in ("anndata", "contiguous", "gzip")}
    adata.write_h5ad(paths["anndata"])
    adata.write_h5ad(paths["gzip"], compression="gzip")
    ad.AnnData(obs=obs, var=var).write_h5ad(paths["contiguous"])
    with h5py.File(paths["contiguous"], "a") as f:
        x = f.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        x.attrs["shape"] = np.array(adata.shape, dtype=np.int64)
        for part in ("data", "indices", "indptr"):
            x.create_dataset(part, data=getattr(adata.X, part))
    return paths


def rows_span(path: Path) -> tuple[int, int]:
    """First and last byte of X/data and X/indices in the file (where the rows are)."""
    with h5py.File(path) as f:
        edges = []
        for name in ("X/data", "X/indices"):
            layout = dataset_layout(f[name])
            if hasattr(layout, "offsets"):
                edges += [layout.offsets.min(), (layout.offsets + layout.sizes).max()]
            else:
                edges += [layout.offset, layout.offset + layout.length * layout.dtype.itemsize]
    return int(min(edges)), int(max(edges))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    paths = write_layouts(root / "bucket" / PREFIX)
    labels = [f"CELL{i:06d}-F" for i in range(N_CELLS)]
    chosen = np.random.default_rng(2).choice(labels, N_CELLS // 10, replace=False)
    cells = root / "cells.csv"
    pd.DataFrame({"cell_label": chosen, "feature_matrix_label": MATRIX}).to_csv(cells, index=False)
    clean = {}
    for name, path in paths.items():
        clean[name] = root / f"clean-{name}.h5ad"
        subset_local_file(path, cells, clean[name], MATRIX)
    return {"root": root, "paths": paths, "cells": cells, "clean": clean}


@pytest.fixture(scope="module")
def s3(release):
    server = MotoServer()
    try:
        upload_tree(server.url, release["root"] / "bucket")
        yield server.url
    finally:
        server.stop()


def run_job(proxy, release, layout: str, out: Path, timeout_s: float = 1.0):
    abc = {
        "bucket": BUCKET,
        "endpoint_url": proxy.url,
        "transfer": "stream",
        "download": {"retries": 10},
        "stream": {"max_concurrency": 8, "merge_gap_kb": 16, "timeout_s": timeout_s},
    }
    key = f"{PREFIX}/{layout}-raw.h5ad"
    command = [sys.executable, str(JOB), json.dumps(abc), key, str(release["cells"]), str(out)]
    try:
        return subprocess.run(
            [*command, MATRIX], capture_output=True, text=True, timeout=JOB_SECONDS
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"stream job on {layout} hung (> {JOB_SECONDS} s) under faults")


RUNS = [("anndata", seed) for seed in range(10)] + [
    (layout, seed) for layout in ("contiguous", "gzip") for seed in range(3)
]


@pytest.mark.parametrize(("layout", "seed"), RUNS)
def test_stream_jobs_finish_identical_under_503s_cuts_and_stalls(
    proxy, release, tmp_path, layout, seed
):
    proxy.chaos(seed=seed, fail=0.15, cut=0.15, stall=0.05, stall_seconds=1.5)
    out = tmp_path / "subset.h5ad"
    job = run_job(proxy, release, layout, out)
    assert job.returncode == 0, job.stderr[-3000:]
    assert out.read_bytes() == release["clean"][layout].read_bytes()
    assert sum(proxy.injected.values()) > 0  # faults did happen


@pytest.mark.parametrize("layout", ["anndata", "contiguous", "gzip"])
def test_flipped_bytes_in_rows_over_http_fail_in_one_line(proxy, release, tmp_path, layout):
    outcomes = []
    for seed in range(4):
        proxy.reset()
        proxy.chaos(seed=seed, flip=0.3)
        proxy.flip_within = rows_span(release["paths"][layout])
        out = tmp_path / f"subset-{seed}.h5ad"
        job = run_job(proxy, release, layout, out)
        if job.returncode == 0:  # then no flip may have reached the result
            assert out.read_bytes() == release["clean"][layout].read_bytes()
            outcomes.append("clean")
            continue
        lines = job.stderr.strip().splitlines()
        assert lines[-1].startswith("abc-downsample: error: "), job.stderr[-3000:]
        assert "damaged" in lines[-1] and "Traceback" not in job.stderr
        assert not out.exists()
        outcomes.append("failed")
    assert proxy.injected["flip"] and "failed" in outcomes


def test_a_stalled_stream_job_fails_in_one_line(proxy, release, tmp_path):
    """Every answer stalls longer than the read timeout: the job gives up after its tries,
    with one line Snakemake's retries can act on, instead of waiting forever."""
    proxy.reset()
    proxy.stall_first, proxy.stall_seconds = 10**6, 3.0
    abc_retries = 2
    out = tmp_path / "subset.h5ad"
    abc = {
        "bucket": BUCKET,
        "endpoint_url": proxy.url,
        "download": {"retries": abc_retries},
        "stream": {"max_concurrency": 8, "merge_gap_kb": 16, "timeout_s": 0.5},
    }
    key = f"{PREFIX}/anndata-raw.h5ad"
    command = [sys.executable, str(JOB), json.dumps(abc), key, str(release["cells"]), str(out)]
    job = subprocess.run([*command, MATRIX], capture_output=True, text=True, timeout=JOB_SECONDS)
    proxy.reset()
    assert job.returncode == 1
    assert "Traceback" not in job.stderr
    last = job.stderr.strip().splitlines()[-1]
    assert last.startswith("abc-downsample: error: could not read") and "rerun" in last
    assert not out.exists()
