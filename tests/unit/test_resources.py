"""Resource callables: sized from the data, cheap, and patient with files not yet there."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from test_csr_rows import random_csr, write_h5ad
from test_subset import file_labels, write_cells_csv

from abc_downsample import resources as res
from abc_downsample.concat.build import DEFAULT_BLOCK_NNZ
from abc_downsample.h5ad.csr import DEFAULT_MAX_NNZ

MB = 1024 * 1024


@pytest.fixture
def matrix(tmp_path):
    """A 200-row file whose row i has i non-zeros (so selected bytes are easy to predict)."""
    n_rows, n_cols = 200, 256
    lengths = np.arange(n_rows)
    indptr = np.r_[0, np.cumsum(lengths)]
    indices = np.concatenate([np.arange(n) for n in lengths]).astype(np.int32)
    x = sp.csr_matrix((np.ones(indptr[-1], np.float32), indices, indptr), shape=(n_rows, n_cols))
    path = tmp_path / "m.h5ad"
    write_h5ad(path, x, "contiguous", file_labels(n_rows))
    return path


def test_selected_bytes_are_bounded_by_the_largest_rows(tmp_path, matrix):
    """Row i has i non-zeros: any n rows hold at most the n largest rows' bytes, and all
    rows exactly the file's (the bound needs only indptr, no obs labels)."""
    assert res.largest_rows_bytes(matrix, 3) == ((199 + 198 + 197) * 8, 200)
    assert res.largest_rows_bytes(matrix, 500) == (sum(range(200)) * 8, 200)
    assert res.largest_rows_bytes(matrix, 0) == (0, 200)
    rows = np.random.default_rng(1).choice(200, 40, replace=False)
    assert rows.sum() * 8 <= res.largest_rows_bytes(matrix, 40)[0]


def test_sample_counts_follow_the_file(tmp_path):
    write_cells_csv(tmp_path / "cells.csv", ["a", "b"])
    assert res.sample_counts(tmp_path / "cells.csv") == {"WMB-10Xv3-TH": 2, "WMB-10Xv2-TH": 6}
    write_cells_csv(tmp_path / "cells.csv", ["a", "b", "c"])  # a new sample, read again
    assert res.sample_counts(tmp_path / "cells.csv")["WMB-10Xv3-TH"] == 3


def test_subset_mem_grows_with_the_selected_bytes(tmp_path):
    n_rows, per_row = 2000, 1000  # 8 kB a row
    indptr = np.arange(n_rows + 1) * per_row
    indices = np.tile(np.arange(per_row, dtype=np.int32), n_rows)
    x = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), (n_rows, per_row))
    path = tmp_path / "big.h5ad"
    write_h5ad(path, x, "contiguous", file_labels(n_rows))
    labels = file_labels(n_rows)
    write_cells_csv(tmp_path / "few.csv", labels[:3])
    write_cells_csv(tmp_path / "many.csv", labels[100:])
    few = res.subset_mem_mb(path, tmp_path / "few.csv", "WMB-10Xv3-TH")
    many = res.subset_mem_mb(path, tmp_path / "many.csv", "WMB-10Xv3-TH")
    assert isinstance(few, int)
    assert few > res.BASE_MB + DEFAULT_MAX_NNZ * 8 / MB  # one read batch is accounted for
    assert many - few == pytest.approx(res.SUBSET_ROWS_FACTOR * (1900 - 3) * 8000 / MB, abs=2)


def test_paths_not_there_yet_raise_file_not_found(tmp_path, matrix):
    write_cells_csv(tmp_path / "cells.csv", ["a"])
    with pytest.raises(FileNotFoundError):
        res.subset_mem_mb(tmp_path / "later.h5ad", tmp_path / "cells.csv", "WMB-10Xv3-TH")
    with pytest.raises(FileNotFoundError):
        res.subset_mem_mb(matrix, tmp_path / "later.csv", "WMB-10Xv3-TH")
    with pytest.raises(FileNotFoundError):
        res.concat_mem_mb([tmp_path / "later.h5ad"])


def test_concat_before_sampling_is_not_made_yet_not_a_crash(tmp_path):
    """A dry-run before the sampling checkpoint: Snakemake passes the checkpoint's output
    (one path, maybe an old sample's) in place of the subsets. That is "not made yet"
    (Snakemake asks again later), named by that path, never its characters."""
    placeholder = tmp_path / "downsampled_cells.csv"
    write_cells_csv(placeholder, ["a"])
    for size in (res.concat_mem_mb, res.concat_runtime_min):
        with pytest.raises(FileNotFoundError) as err:
            size(str(placeholder))
        assert err.value.filename == str(placeholder)


def test_estimate_from_cells_bounds_by_file_size(tmp_path):
    write_cells_csv(tmp_path / "cells.csv", [f"c{i}" for i in range(500)])
    tiny_file = res.estimate_subset_mem_mb_from_cells(1 * MB, tmp_path / "cells.csv",
                                                      "WMB-10Xv3-TH")  # fmt: skip
    big_file = res.estimate_subset_mem_mb_from_cells(10_000 * MB, tmp_path / "cells.csv",
                                                     "WMB-10Xv3-TH")  # fmt: skip
    assert tiny_file < big_file
    assert big_file >= res.BASE_MB + 1.5 * 500 * 30_000 / MB  # at least ~30 kB a real cell


def test_a_subset_job_is_sized_from_the_cached_file_else_estimated(tmp_path, matrix):
    """The Snakefile's and the plan's one sizing: a cached file's indptr; without one, or
    with one that cannot be read (its job says what is wrong), the estimate from its size."""
    write_cells_csv(tmp_path / "cells.csv", ["a"])
    damaged = tmp_path / "damaged.h5ad"
    damaged.write_bytes(b"not an HDF5 file")
    args = (10_000 * MB, tmp_path / "cells.csv", "WMB-10Xv3-TH")
    estimate = res.estimate_subset_mem_mb_from_cells(*args)
    assert res.subset_job_mem_mb(matrix, *args) == res.subset_mem_mb(matrix, *args[1:])
    assert res.subset_job_mem_mb(matrix, *args) != estimate
    assert res.subset_job_mem_mb(None, *args) == estimate
    assert res.subset_job_mem_mb(damaged, *args) == estimate
    with pytest.raises(FileNotFoundError):  # no sample yet: Snakemake asks again later
        res.subset_job_mem_mb(matrix, 10_000 * MB, tmp_path / "later.csv", "WMB-10Xv3-TH")


def test_concat_mem_follows_cells_not_matrix_size(tmp_path):
    def subsets(name, n_rows, density):
        path = tmp_path / f"{name}.h5ad"
        x = random_csr(n_rows, 400, np.float32, seed=1)
        x = x.multiply(np.random.default_rng(0).random(x.shape) < density).tocsr()
        write_h5ad(path, x.astype(np.float32), "contiguous")
        return path

    sparse = res.concat_mem_mb([subsets("a", 300, 0.01)])
    dense = res.concat_mem_mb([subsets("b", 300, 1.0)])
    assert sparse == dense  # X is streamed: its size does not count
    more = res.concat_mem_mb([subsets("c", 300, 0.01), subsets("d", 300, 0.01)])
    assert more > sparse > res.BASE_MB + DEFAULT_BLOCK_NNZ * 8 / MB
    assert res.concat_runtime_min([tmp_path / "b.h5ad"]) >= res.concat_runtime_min(
        [tmp_path / "a.h5ad"]
    )


def test_runtime_grows_with_file_size():
    assert res.subset_runtime_min(100 * MB) < res.subset_runtime_min(13_700 * MB)
    # 13.7 GB at 5 MB/s is 44 minutes, plus 10 of slack
    assert res.download_runtime_min(13_700 * MB) == 10 + 46
    assert res.download_runtime_min(0) == 10
    assert isinstance(res.subset_runtime_min(13_700 * MB), int)


def test_buffer_sizes_mirror_the_readers():
    assert res.SUBSET_BATCH_NNZ == DEFAULT_MAX_NNZ
    assert res.CONCAT_BLOCK_NNZ == DEFAULT_BLOCK_NNZ


def test_importing_resources_stays_light():
    code = "import sys, abc_downsample.resources; print('anndata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": "scripts"})  # fmt: skip
    assert out.stdout.strip() == "False"
