"""One expression matrix file to one subset h5ad: the sampled cells of that file only."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import h5py
import numpy as np
import pandas as pd

from .atomic import atomic_path
from .csr_rows import (
    DEFAULT_MAX_NNZ,
    CsrSource,
    H5CsrSource,
    csr_h5ad_writer,
    read_obs_labels,
    read_obs_rows,
    read_rows,
    read_var,
)
from .errors import AbcError, few, unreadable

log = logging.getLogger(__name__)

CORRUPT = "the file may be truncated or corrupt; delete it and rerun"


@dataclass
class SubsetStats:
    """What a subset job did, for its log line."""

    rows: int
    nnz: int
    bytes_read: int

    def summary(self, matrix: str) -> str:
        return (
            f"{matrix}: {self.rows:,} rows, {self.nnz:,} non-zeros, "
            f"{self.bytes_read / 1e6:,.1f} MB of rows read"
        )


def labels_for_matrix(cells_csv: str | os.PathLike, matrix: str) -> pd.Index:
    """Cell labels of ``matrix`` in the sample's order (``downsampled_cells.csv``).

    Only two columns are parsed and only this matrix's rows kept (pyarrow, multithreaded):
    every subset job reads the whole sample's table.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    columns = ["cell_label", "feature_matrix_label"]
    options = csv.ConvertOptions(
        include_columns=columns,
        column_types=dict.fromkeys(columns, pa.string()),
        strings_can_be_null=False,
    )
    try:
        table = csv.read_csv(cells_csv, convert_options=options)
    except (pa.ArrowInvalid, KeyError) as err:
        raise AbcError(
            f"{cells_csv} lacks a column ({str(err).splitlines()[0]}): it needs "
            f"{', '.join(columns)}; delete it and rerun the sampling"
        ) from None
    mine = table.filter(pc.equal(table["feature_matrix_label"], matrix))["cell_label"]
    labels = pd.Index(mine.to_pylist(), dtype=object)
    if labels.has_duplicates:
        twice = few(labels[labels.duplicated()].unique())
        raise AbcError(
            f"{cells_csv} lists cells more than once ({twice}): delete it and rerun the sampling"
        )
    return labels.rename("cell_label")


def rows_for_labels(file_labels: pd.Index, labels: pd.Index, filename: str) -> np.ndarray:
    """Row numbers of ``labels`` in a file whose obs index is ``file_labels`` (``str`` or,
    as stored, ``bytes``)."""
    if file_labels.has_duplicates:
        raise AbcError(
            f"{filename} has duplicate cell labels in obs: the file is not an ABC Atlas "
            "matrix or is corrupt; delete it and rerun"
        )
    stored = labels
    if len(file_labels) and isinstance(file_labels[0], bytes):
        stored = pd.Index([label.encode() for label in labels], dtype=object)
    rows = file_labels.get_indexer(stored)
    missing = labels[rows < 0]
    if len(missing):
        raise AbcError(
            f"cell {few(missing)} missing from {filename}: the file may be truncated or "
            "from another release; delete it and rerun"
        )
    return rows.astype(np.int64)


def subset_matrix(
    h5file: h5py.File,
    cell_labels: pd.Index,
    out_path: str | os.PathLike,
    *,
    matrix: str,
    source: CsrSource | None = None,
    max_nnz: int = DEFAULT_MAX_NNZ,
) -> SubsetStats:
    """Write the rows of ``cell_labels`` (in that order) of an open h5ad to ``out_path``.

    ``source`` reads X (default: the local file's X); obs/var always come from ``h5file``,
    so a remote reader passes its file-like-backed h5py file and its own source.
    """
    filename = os.path.basename(h5file.filename)
    with unreadable(filename, CORRUPT):
        source = source if source is not None else H5CsrSource(h5file["X"])
        rows = rows_for_labels(read_obs_labels(h5file), pd.Index(cell_labels), filename)
        obs = read_obs_rows(h5file, rows)
        obs.index = obs.index.rename("cell_label")
        var = read_var(h5file)
        var.index = var.index.rename("gene_identifier")
        matrix_rows = read_rows(source, rows, max_nnz=max_nnz)
    uns = {"source_file": filename, "matrix": matrix}
    with (
        atomic_path(out_path, suffix=".h5ad") as tmp,
        csr_h5ad_writer(
            tmp, obs, var, uns, matrix_rows.nnz, source.dtype, source.indices_dtype
        ) as writer,
    ):
        writer.append(matrix_rows.data, matrix_rows.indices, matrix_rows.indptr)
    nbytes = matrix_rows.data.nbytes + matrix_rows.indices.nbytes
    return SubsetStats(rows=len(rows), nnz=matrix_rows.nnz, bytes_read=nbytes)


def subset_local_file(
    matrix_path: str | os.PathLike,
    cells_csv: str | os.PathLike,
    out_path: str | os.PathLike,
    matrix: str,
    max_nnz: int = DEFAULT_MAX_NNZ,
) -> SubsetStats:
    """Subset a downloaded matrix file to the cells of ``matrix`` in ``cells_csv``."""
    labels = labels_for_matrix(cells_csv, matrix)
    name = os.path.basename(matrix_path)
    with unreadable(name, CORRUPT):
        h5file = h5py.File(matrix_path, "r")
    with h5file:
        if "X" not in h5file or "obs" not in h5file or "var" not in h5file:
            raise AbcError(
                f"{name} lacks X, obs or var: it is not an h5ad expression matrix; "
                "delete it and rerun"
            )
        with unreadable(name, CORRUPT):
            source = H5CsrSource(h5file["X"])
        stats = subset_matrix(
            h5file, labels, out_path, matrix=matrix, source=source, max_nnz=max_nnz
        )
    stats.bytes_read = source.bytes_read
    return stats
