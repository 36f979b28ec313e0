"""Per-job ``mem_mb`` / ``runtime`` from the data, for the Snakefile's resource callables.

Cheap on purpose (the main Snakemake process sizes every job): they read the sample's
matrix column once, a matrix file's ``X/indptr``, or a subset's X shape, never the values.
A path that does not exist yet raises ``FileNotFoundError``, which Snakemake takes as "ask
again later".

Memory model of a subset job (see benchmarks/README.md for the measurements behind it):
interpreter and libraries, plus the matrix file's obs table, plus the selected rows held
once with one read batch and the writer's buffers on top (``SUBSET_ROWS_FACTOR``).
"""

from __future__ import annotations

import collections
import csv
import errno
import functools
import math
import os

from abc_downsample.cells_csv import MATRIX
from abc_downsample.units import CONCAT_BLOCK_NNZ, STREAM_CACHE_BYTES, SUBSET_BATCH_NNZ, MiB

# h5py and numpy are imported where used: the main Snakemake process imports this module
# while it reads the workflow, and every run (a dry run too) would pay for them

BASE_MB = 400  # python + numpy/pandas/scipy/h5py/anndata, measured ~200 MB
OBS_BYTES_PER_FILE_CELL = 600  # a matrix file's obs (labels, barcodes, two categoricals)
SUBSET_ROWS_FACTOR = 1.5  # the rows once, and margin for allocator and writer
OBS_BYTES_PER_OUTPUT_CELL = 4096  # final obs: ~20 metadata + 5 taxonomy columns, as objects
STREAM_CACHE_MB = STREAM_CACHE_BYTES // MiB  # stream mode: the remote reader's block cache
MAX_BYTES_PER_CELL = 64 * 1024  # real files: ~31 kB (10Xv2) to ~41 kB (10Xv3) a cell
MIN_BYTES_PER_CELL = 16 * 1024  # for guessing a remote file's cell count from its size
DISK_MB_PER_S = 20  # pessimistic shared-filesystem throughput for runtimes
DOWNLOAD_MB_PER_S = 5  # pessimistic network throughput for download runtimes
DOWNLOAD_SLACK_MIN = 10


def _ceil(value: float) -> int:
    return int(math.ceil(value))


def _require(path) -> None:
    """With ``filename`` set, Snakemake sees a not-yet-made input and asks again later."""
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "not made yet", str(path))


def sample_counts(cells_csv) -> dict[str, int]:
    """Cells per matrix (``feature_matrix_label``) in the sample, read once per version of
    the file: the main Snakemake process asks for every job it sizes or lists."""
    _require(cells_csv)
    info = os.stat(cells_csv)
    return _sample_counts(os.fspath(cells_csv), info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=4)
def _sample_counts(path: str, mtime_ns: int, size: int) -> dict[str, int]:
    with open(path, newline="") as handle:
        rows = csv.reader(handle)
        at = next(rows, []).index(MATRIX)
        return dict(collections.Counter(row[at] for row in rows if row))


def largest_rows_bytes(matrix_path, n_rows: int) -> tuple[int, int]:
    """Bytes of the ``n_rows`` largest rows' values and indices in a local matrix (a bound
    for any selection of that many rows, exact for all of them), and its row count. Only
    ``indptr`` is read: the obs labels that would make it exact cost 0.2-0.4 s a job."""
    import h5py
    import numpy as np

    _require(matrix_path)
    with h5py.File(matrix_path, "r") as h5file:
        group = h5file["X"]
        lengths = np.diff(group["indptr"][:].astype(np.int64))
        per_nnz = group["data"].dtype.itemsize + group["indices"].dtype.itemsize
    n = min(max(0, n_rows), len(lengths))
    largest = np.partition(lengths, len(lengths) - n)[len(lengths) - n :] if n else lengths[:0]
    return int(largest.sum()) * per_nnz, len(lengths)


def _subset_mb(rows_bytes: float, file_rows: float) -> int:
    batch_bytes = SUBSET_BATCH_NNZ * 8
    return _ceil(
        BASE_MB
        + (file_rows * OBS_BYTES_PER_FILE_CELL + batch_bytes) / MiB
        + SUBSET_ROWS_FACTOR * rows_bytes / MiB
    )


def subset_mem_mb(matrix_path, cells_csv, matrix: str) -> int:
    """Memory of a subset job on a local (cached) matrix file, from its ``indptr``."""
    n_selected = sample_counts(cells_csv).get(matrix, 0)
    rows_bytes, file_rows = largest_rows_bytes(matrix_path, n_selected)
    return _subset_mb(rows_bytes, file_rows)


def estimate_subset_mem_mb_from_cells(file_size: int, cells_csv, matrix: str) -> int:
    """Memory of a subset job on a remote file, known only by its size (stream mode).

    The selection is bounded by a generous bytes-per-cell and by the file size; the file's
    cell count (for its obs table) is guessed high from its size.
    """
    n_selected = sample_counts(cells_csv).get(matrix, 0)
    rows_bytes = min(file_size, n_selected * MAX_BYTES_PER_CELL)
    file_rows = file_size / MIN_BYTES_PER_CELL
    return _subset_mb(rows_bytes, file_rows) + STREAM_CACHE_MB


def subset_job_mem_mb(cached_path, file_size: int, cells_csv, matrix: str) -> int:
    """Memory of a subset job (the Snakefile's and the plan's): from the cached file's
    ``indptr`` where the cache holds it (``cached_path``, else None), else estimated from the
    file's size (the manifest's)."""
    if cached_path is not None:
        try:
            return subset_mem_mb(cached_path, cells_csv, matrix)
        except Exception:  # damaged or unusual (dense X): the job says what
            pass
    return estimate_subset_mem_mb_from_cells(file_size, cells_csv, matrix)


def download_runtime_min(file_size: int) -> int:
    """Minutes for a download at a pessimistic rate, plus slack."""
    return DOWNLOAD_SLACK_MIN + _ceil(file_size / (DOWNLOAD_MB_PER_S * MiB * 60))


def subset_runtime_min(file_size: int) -> int:
    """Minutes for a subset job: as if the whole file were read at a slow disk's speed."""
    return 10 + _ceil(file_size / MiB / DISK_MB_PER_S / 60)


def _subset_shapes(subset_paths) -> list[tuple[int, int, int]]:
    """(rows, non-zeros, bytes a non-zero) of each subset, from X's attributes."""
    if isinstance(subset_paths, (str, os.PathLike)):
        # Before the sampling checkpoint has run (a dry-run), Snakemake holds its output, one
        # path, in place of the list of subsets: they are not known yet.
        raise FileNotFoundError(errno.ENOENT, "not sampled yet", str(subset_paths))
    import h5py

    shapes = []
    for path in subset_paths:
        _require(path)
        with h5py.File(path, "r") as h5file:
            group = h5file["X"]
            per_nnz = group["data"].dtype.itemsize + group["indices"].dtype.itemsize
            shapes.append((int(group.attrs["shape"][0]), len(group["data"]), per_nnz))
    return shapes


def concat_mem_mb(subset_paths) -> int:
    """Memory of the concat job: fixed buffers plus the final obs table, not X's size."""
    return concat_mem_mb_for(sum(rows for rows, _, _ in _subset_shapes(subset_paths)))


def concat_mem_mb_for(n_cells: int) -> int:
    """`concat_mem_mb` of a result of ``n_cells`` cells."""
    return _ceil(
        BASE_MB
        + CONCAT_BLOCK_NNZ * 8 / MiB
        + n_cells * OBS_BYTES_PER_OUTPUT_CELL / MiB
    )


def concat_runtime_min(subset_paths) -> int:
    """Minutes for the concat job: reading and writing X at a slow disk's speed."""
    x_bytes = sum(nnz * per_nnz for _, nnz, per_nnz in _subset_shapes(subset_paths))
    return 10 + _ceil(2 * x_bytes / MiB / DISK_MB_PER_S / 60)
