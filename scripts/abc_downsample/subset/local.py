"""One expression matrix file to one subset h5ad: the sampled cells of that file only.

Imports h5py and numpy only (see `h5ad_tables`): the fixed cost of each of the 24 jobs.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from abc_downsample.atomic import atomic_path
from abc_downsample.cells_csv import CELL_LABEL, MATRIX
from abc_downsample.errors import AbcError, few, unreadable
from abc_downsample.h5ad.csr import DEFAULT_MAX_NNZ, CsrSource, H5CsrSource, read_row_arrays
from abc_downsample.h5ad.tables import read_obs, read_obs_labels, read_table, read_var
from abc_downsample.h5ad.writer import csr_h5ad_writer, h5ad_writer

log = logging.getLogger(__name__)

CORRUPT = "the file may be truncated or corrupt; delete it and rerun"
LABEL_COLUMNS = (CELL_LABEL, MATRIX)
# SubsetStats.summary's figures: "1,234 rows, 5,678 non-zeros, 12.5 MB read (stream: 9.1 MB of
# rows) in 3.20 s (1.10 s waiting for the bucket)"
SUMMARY = re.compile(
    r"([\d,]+) rows, ([\d,]+) non-zeros, ([\d,.]+) MB read \((cache|download|stream)"
    r"(?:: ([\d,.]+) MB of rows)?\)(?: in ([\d.]+) s)?"
    r"(?: \(([\d.]+) s waiting for the bucket\))?"
)


@dataclass
class SubsetStats:
    """What a subset job did, for its log line."""

    rows: int
    nnz: int
    bytes_read: int  # the rows' bytes from a local file; all fetched bytes when streamed
    transfer: str = "cache"  # how the matrix was read: cache, download or stream
    row_bytes: int | None = None  # streamed: of bytes_read, the rows' (not headers, obs, var)
    seconds: float | None = None  # getting the matrix (or its rows) and writing the subset
    waited: float = 0.0  # of it, waiting for the bucket (transfers)

    def summary(self, matrix: str) -> str:
        rows = f": {self.row_bytes / 1e6:,.1f} MB of rows" if self.row_bytes is not None else ""
        took = f" in {self.seconds:.2f} s" if self.seconds is not None else ""
        if self.transfer != "cache":
            took += f" ({self.waited:.2f} s waiting for the bucket)"
        return (
            f"{matrix}: {self.rows:,} rows, {self.nnz:,} non-zeros, "
            f"{self.bytes_read / 1e6:,.1f} MB read ({self.transfer}{rows}){took}"
        )


def parse_summary(text: str) -> SubsetStats | None:
    """The figures of the last `SubsetStats.summary` line in ``text`` (a job's log: a
    retried job's last try), bytes to 0.1 MB; None if it has none (the report and the
    benchmarks read how each job read its matrix)."""
    found = SUMMARY.findall(text)
    if not found:
        return None
    rows, nnz, read, transfer, row_mb, seconds, waited = found[-1]
    return SubsetStats(
        rows=int(rows.replace(",", "")),
        nnz=int(nnz.replace(",", "")),
        bytes_read=_megabytes(read),
        transfer=transfer,
        row_bytes=_megabytes(row_mb) if row_mb else None,
        seconds=float(seconds) if seconds else None,
        waited=float(waited or 0),
    )


def _megabytes(text: str) -> int:
    return round(float(text.replace(",", "")) * 1e6)


def labels_for_matrix(cells_csv: str | os.PathLike, matrix: str) -> list[str]:
    """Cell labels of ``matrix`` in the sample's order (``downsampled_cells.csv``).

    Every subset job reads the whole sample's table for its few rows: lines not naming the
    matrix are skipped unparsed when no field is quoted (our writer quotes none unless it
    must), else the stdlib csv module parses all.
    """
    with open(cells_csv, newline="", encoding="utf-8-sig") as handle:
        text = handle.read()
    end = text.find("\n")
    first_line = text if end < 0 else text[:end]
    header = next(csv.reader([first_line]), [])
    try:
        label, where = (header.index(name) for name in LABEL_COLUMNS)
    except ValueError:
        raise AbcError(
            f"{cells_csv} lacks a column (it has {', '.join(header) or 'none'}): it needs "
            f"{', '.join(LABEL_COLUMNS)}; delete it and rerun the sampling"
        ) from None
    if '"' in text or "\r" in text:
        records = csv.reader(io.StringIO(text, newline=""))
        next(records)
    else:  # unquoted: a line is a record, its fields split at commas
        records = (line.split(",") for line in _lines_naming(text, matrix, len(first_line)))
    try:
        labels = [row[label] for row in records if row and row[where] == matrix]
    except IndexError:
        raise AbcError(
            f"{cells_csv} has a row with fewer fields than its header: delete it and rerun "
            "the sampling"
        ) from None
    _refuse_repeats(labels, cells_csv)
    return labels


def _lines_naming(text: str, matrix: str, start: int) -> Iterator[str]:
    """The lines of ``text`` after ``start`` that contain ``matrix``, found by str.find:
    Python touches only those few lines of the 200,000."""
    at = text.find(matrix, start)
    while at >= 0:
        first = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        yield text[first:end]
        at = text.find(matrix, end)


def _refuse_repeats(labels: list[str], cells_csv) -> None:
    if len(set(labels)) == len(labels):
        return
    seen: set[str] = set()
    twice = dict.fromkeys(label for label in labels if label in seen or seen.add(label))
    raise AbcError(
        f"{cells_csv} lists cells more than once ({few(twice)}): delete it and rerun the sampling"
    )


def rows_for_labels(file_labels: Sequence, labels: Sequence[str], filename: str) -> np.ndarray:
    """Row numbers of ``labels`` in a file whose obs index is ``file_labels`` (``str`` or,
    as stored, ``bytes``)."""
    file_labels = list(file_labels)
    row_of = dict(zip(file_labels, range(len(file_labels)), strict=True))
    if len(row_of) != len(file_labels):
        raise AbcError(
            f"{filename} has duplicate cell labels in obs: the file is not an ABC Atlas "
            "matrix or is corrupt; delete it and rerun"
        )
    labels = list(labels)
    stored = labels
    if file_labels and isinstance(file_labels[0], bytes):
        stored = [label.encode() for label in labels]
    rows = np.array([row_of.get(label, -1) for label in stored], np.int64)
    missing = [label for label, row in zip(labels, rows.tolist(), strict=True) if row < 0]
    if missing:
        raise AbcError(
            f"cell {few(missing)} missing from {filename}: the file may be truncated or "
            "from another release; delete it and rerun"
        )
    return rows


def subset_matrix(
    h5file: h5py.File,
    cell_labels: Sequence[str],
    out_path: str | os.PathLike,
    *,
    matrix: str,
    source: CsrSource | None = None,
    max_nnz: int = DEFAULT_MAX_NNZ,
    rows: np.ndarray | None = None,
) -> SubsetStats:
    """Write the rows of ``cell_labels`` (in that order) of an open h5ad to ``out_path``.

    ``source`` reads X (default: the local file's X); obs/var always come from ``h5file``,
    so a remote reader passes its file-like-backed h5py file and its own source. ``rows``:
    the labels' row numbers, if the caller has matched them already.
    """
    filename = os.path.basename(h5file.filename)
    with unreadable(filename, CORRUPT):
        source = source if source is not None else H5CsrSource(h5file["X"])
        if rows is None:
            rows = rows_for_labels(read_obs_labels(h5file), cell_labels, filename)
        obs = read_table(h5file["obs"], rows, CELL_LABEL, index=list(cell_labels))
        var = read_table(h5file["var"], None, "gene_identifier")
        writer = h5ad_writer
        if obs is None or var is None:
            obs, var = _frames(h5file, rows)
            writer = csr_h5ad_writer
        data, indices, indptr = read_row_arrays(source, rows, max_nnz=max_nnz)
    uns = {"source_file": filename, "matrix": matrix}
    nnz = len(data)
    with (
        atomic_path(out_path, suffix=".h5ad") as tmp,
        writer(tmp, obs, var, uns, nnz, source.dtype, source.indices_dtype) as out,
    ):
        out.append(data, indices, indptr)
    return SubsetStats(rows=len(rows), nnz=nnz, bytes_read=data.nbytes + indices.nbytes)


def _frames(h5file: h5py.File, rows: np.ndarray):
    """obs rows and var as pandas tables, for encodings `h5ad_tables` does not copy
    (nullable or numeric-categorical columns: not in the ABC files, so pandas is rare)."""
    obs = read_obs(h5file).iloc[rows]
    obs.index = obs.index.rename(CELL_LABEL)
    var = read_var(h5file)
    var.index = var.index.rename("gene_identifier")
    return obs, var


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
