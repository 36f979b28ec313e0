"""Read selected rows of an on-disk CSR matrix in bounded batches.

Reading is split in two so that a remote reader (ranged GETs) can reuse the planning:
pure helpers (`row_runs`, `batches`) decide which stretches of ``data``/``indices`` to
fetch, a `CsrSource` fetches them, and `read_row_arrays` puts the rows in the requested order.

Imports are h5py and numpy only: every subset job imports this module, and pandas, anndata
and scipy cost over a second a process. The functions returning pandas or scipy objects
import them when called (concat and the R export, which load them anyway).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import h5py
import numpy as np

from abc_downsample.errors import AbcError
from abc_downsample.h5ad.encoding import encoding_of
from abc_downsample.units import SUBSET_BATCH_NNZ, MiB

# Non-zeros fetched per batch: 8 M x (4 + 4 bytes) = 64 MB of buffers at most.
DEFAULT_MAX_NNZ = SUBSET_BATCH_NNZ
# Chunk cache per dataset for chunked (e.g. gzip) files: sorted runs walk the chunks in
# order, so a cache of a few chunks decompresses each chunk once.
CHUNK_CACHE_BYTES = 32 * MiB

if TYPE_CHECKING:
    import scipy.sparse as sp

Run = tuple[int, int]


class CsrSource(Protocol):
    """Rows of a CSR matrix stored somewhere: shape, dtypes, ``indptr`` and a run reader."""

    n_rows: int
    n_cols: int
    dtype: np.dtype
    indices_dtype: np.dtype
    indptr: np.ndarray

    def read_runs(self, runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``data`` and ``indices`` of the row runs ``[a, b)``, concatenated in order."""
        ...


class H5CsrSource:
    """A `CsrSource` over an anndata CSR group (``f["X"]``) of an open h5py file."""

    def __init__(self, group: h5py.Group):
        check_csr_group(group)
        self.n_rows, self.n_cols = (int(n) for n in group.attrs["shape"])
        self._data = _open_with_chunk_cache(group, "data")
        self._indices = _open_with_chunk_cache(group, "indices")
        self.dtype = self._data.dtype
        self.indices_dtype = self._indices.dtype
        self._spaces = (self._data.id.get_space(), self._indices.id.get_space())
        self.indptr = group["indptr"][:].astype(np.int64, copy=False)
        self.bytes_read = 0
        nnz = int(self.indptr[-1]) if len(self.indptr) else -1
        if len(self.indptr) != self.n_rows + 1 or not len(self._data) == len(self._indices) == nnz:
            raise AbcError(
                f"X of {_filename(group)} is inconsistent (indptr has {len(self.indptr)} "
                f"entries for {self.n_rows} rows and ends at {nnz}, {len(self._data)} values): "
                "the file is corrupt; delete it and rerun"
            )

    def read_runs(self, runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
        starts = self.indptr[[a for a, _ in runs]]
        stops = self.indptr[[b for _, b in runs]]
        total = int((stops - starts).sum())
        data = np.empty(total, self.dtype)
        indices = np.empty(total, self.indices_dtype)
        offset = 0
        for first, last in _spans(starts, stops):
            lo, hi = int(starts[first]), int(stops[last - 1])
            if last - first == 1:  # one run: straight into place
                self._read_slice(lo, hi, data[offset:], indices[offset:])
                offset += hi - lo
                continue
            # runs close together (small rows): one read of the stretch, then cut out
            span_data = np.empty(hi - lo, self.dtype)
            span_indices = np.empty(hi - lo, self.indices_dtype)
            self._read_slice(lo, hi, span_data, span_indices)
            for a, b in zip(starts[first:last].tolist(), stops[first:last].tolist(), strict=True):
                data[offset : offset + b - a] = span_data[a - lo : b - lo]
                indices[offset : offset + b - a] = span_indices[a - lo : b - lo]
                offset += b - a
        self.bytes_read += data.nbytes + indices.nbytes
        return data, indices

    def _read_slice(self, lo: int, hi: int, data: np.ndarray, indices: np.ndarray) -> None:
        """Elements ``[lo, hi)`` of both arrays into the heads of ``data`` and ``indices``."""
        if hi <= lo:
            return
        # h5py's low-level API: its high-level slicing costs ~1 ms a call, 10x this.
        memory_space = h5py.h5s.create_simple((hi - lo,))
        for dataset, space, out in zip(
            (self._data, self._indices), self._spaces, (data, indices), strict=True
        ):
            space.select_hyperslab((lo,), (hi - lo,))
            dataset.id.read(memory_space, space, out[: hi - lo])


# Runs of rows whose non-zeros are at most this many elements apart are read in one call
# (a call costs ~20 us, as much as reading ~16 KB), up to SPAN_MAX elements at once.
SPAN_GAP = 4096
SPAN_MAX = 1 << 20


def _spans(starts: np.ndarray, stops: np.ndarray) -> list[tuple[int, int]]:
    """Group element runs ``[starts, stops)`` into spans ``(first, last)`` of runs that
    follow each other in the file closely."""
    starts, stops = starts.tolist(), stops.tolist()
    spans: list[tuple[int, int]] = []
    first = 0
    for i in range(1, len(starts)):
        gap = starts[i] - stops[i - 1]
        if not 0 <= gap <= SPAN_GAP or stops[i] - starts[first] > SPAN_MAX:
            spans.append((first, i))
            first = i
    if len(starts):
        spans.append((first, len(starts)))
    return spans


def check_csr_group(group: h5py.Group | h5py.Dataset) -> None:
    """Raise `AbcError` unless ``group`` is an anndata-encoded CSR matrix."""
    kind = encoding_of(group, "dense array")
    if isinstance(group, h5py.Dataset) or kind != "csr_matrix":
        raise AbcError(
            f"{group.name} in {_filename(group)} is a {kind}, not a CSR matrix: "
            "use an ABC Atlas expression matrix file (X stored as csr_matrix)"
        )


def _open_with_chunk_cache(group: h5py.Group, name: str) -> h5py.Dataset:
    """Open ``group[name]`` with a chunk cache big enough to hold a few chunks."""
    dataset = group[name]
    if dataset.chunks is None:
        return dataset
    chunk_bytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
    cache_bytes = max(CHUNK_CACHE_BYTES, 4 * chunk_bytes)
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(1009, cache_bytes, 1.0)
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode(), dapl=dapl))


def _filename(node: h5py.HLObject) -> str:
    return os.path.basename(node.file.filename)


def row_runs(rows: np.ndarray) -> list[Run]:
    """Merge sorted, unique row numbers into half-open runs ``[a, b)`` of adjacent rows."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.r_[0, breaks]]
    stops = rows[np.r_[breaks - 1, len(rows) - 1]] + 1
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def batches(runs: list[Run], indptr: np.ndarray, max_nnz: int) -> list[list[Run]]:
    """Group runs so that each group holds at most ``max_nnz`` non-zeros.

    A run bigger than ``max_nnz`` is split between rows; a single row bigger than
    ``max_nnz`` makes a group of its own (rows are never split).
    """
    groups: list[list[Run]] = []
    current: list[Run] = []
    held = 0
    for run in _split_runs(runs, indptr, max_nnz):
        size = int(indptr[run[1]] - indptr[run[0]])
        if current and held + size > max_nnz:
            groups.append(current)
            current, held = [], 0
        current.append(run)
        held += size
    if current:
        groups.append(current)
    return groups


def _split_runs(runs: list[Run], indptr: np.ndarray, max_nnz: int) -> Iterator[Run]:
    """Yield the runs, cutting those over ``max_nnz`` non-zeros at row boundaries."""
    for a, b in runs:
        while b - a > 1 and indptr[b] - indptr[a] > max_nnz:
            # Last row whose end still fits (at least one row per piece).
            cut = int(np.searchsorted(indptr[a : b + 1], indptr[a] + max_nnz, side="right"))
            cut = a + max(cut - 1, 1)
            yield a, cut
            a = cut
        yield a, b


def read_row_arrays(
    source: CsrSource, rows: np.ndarray, max_nnz: int = DEFAULT_MAX_NNZ
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``rows`` of ``source``, in that order, as CSR arrays ``data, indices, indptr``
    (``indptr`` int64, starting at 0).

    Rows are fetched in file order (adjacent rows together, ``max_nnz`` non-zeros a batch)
    and copied straight into their place in the result: memory is the result plus one batch.
    """
    rows = _checked_rows(rows, source.n_rows)
    indptr = source.indptr
    lengths = indptr[rows + 1] - indptr[rows]
    out_indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=out_indptr[1:])
    data = np.empty(int(out_indptr[-1]), source.dtype)
    indices = np.empty(int(out_indptr[-1]), source.indices_dtype)

    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    done = 0  # sorted rows already placed
    for group in batches(row_runs(sorted_rows), indptr, max_nnz):
        n_group = sum(b - a for a, b in group)
        positions = order[done : done + n_group]
        batch_data, batch_indices = source.read_runs(group)
        _place(batch_data, batch_indices, lengths[positions], out_indptr[positions], data, indices)
        del batch_data, batch_indices  # before the next batch: one batch held at a time
        done += n_group
    return data, indices, out_indptr


def read_rows(source: CsrSource, rows: np.ndarray, max_nnz: int = DEFAULT_MAX_NNZ) -> sp.csr_matrix:
    """`read_row_arrays` as a scipy CSR matrix."""
    data, indices, indptr = read_row_arrays(source, rows, max_nnz)
    return _csr(data, indices, indptr, (len(indptr) - 1, source.n_cols))


def _checked_rows(rows: np.ndarray, n_rows: int) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64).ravel()
    if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
        raise IndexError(f"row numbers must be in [0, {n_rows})")
    ordered = np.sort(rows)  # not np.unique: its first call costs ~10 ms a process
    if (ordered[1:] == ordered[:-1]).any():
        raise ValueError("row numbers must be unique")
    return rows


def _place(batch_data, batch_indices, lengths, dest_starts, data, indices) -> None:
    """Copy a batch (rows in file order) to the rows' places in the output arrays.

    Rows that follow each other both in the batch and in the output are copied as one
    slice, so an already ordered request costs one copy a run.
    """
    if len(lengths) == 0:
        return
    src_starts = np.r_[0, np.cumsum(lengths)[:-1]]
    contiguous = dest_starts[1:] == dest_starts[:-1] + lengths[:-1]
    seg_first = np.r_[0, np.flatnonzero(~contiguous) + 1]
    seg_last = np.r_[seg_first[1:], len(lengths)]
    for first, last in zip(seg_first.tolist(), seg_last.tolist(), strict=True):
        src, dest = int(src_starts[first]), int(dest_starts[first])
        size = int(src_starts[last - 1] + lengths[last - 1]) - src
        data[dest : dest + size] = batch_data[src : src + size]
        indices[dest : dest + size] = batch_indices[src : src + size]


def _csr(data, indices, indptr, shape) -> sp.csr_matrix:
    """Build a CSR matrix without scipy re-checking or copying the arrays."""
    import scipy.sparse as sp  # only for callers wanting a matrix object

    if _fits(indptr, indices):
        indptr = indptr.astype(indices.dtype)
    else:  # scipy needs one index dtype for both arrays
        indices = indices.astype(np.int64)
    matrix = sp.csr_matrix(shape, dtype=data.dtype)
    matrix.data, matrix.indices, matrix.indptr = data, indices, indptr
    return matrix


def _fits(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """True if ``indptr`` can share the (narrower) dtype of ``indices``, like scipy does."""
    return len(indptr) == 0 or indptr[-1] <= np.iinfo(indices.dtype).max


