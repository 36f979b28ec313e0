"""Writing h5ad files in blocks: X appended row block by row block into a preallocated
CSR group, under obs/var written by anndata (concat) or by ``tables`` (subset jobs)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import h5py
import numpy as np

from abc_downsample.h5ad.encoding import STRINGS, encode
from abc_downsample.h5ad.tables import Table, write_table

if TYPE_CHECKING:
    import pandas as pd


GROWING_CHUNK = 1 << 18  # elements a chunk of growable data/indices (1 MB of float32)


class CsrWriter:
    """Append CSR rows to a preallocated anndata CSR group, block by block.

    ``growable``: ``nnz`` is only a bound (rows filtered while copied): data and indices
    are chunked and grow as values come.
    """

    def __init__(self, group: h5py.Group, shape, nnz: int, dtype, indices_dtype,
                 growable: bool = False):  # fmt: skip
        self.shape = tuple(int(n) for n in shape)
        self.growable = growable
        encode(group, "csr_matrix")
        group.attrs["shape"] = np.array(self.shape, dtype=np.int64)
        # indices and indptr of one dtype, as scipy makes them: anndata reads them as written,
        # and sklearn's sparse kernels (scanpy's PCA) refuse int32 indices with int64 indptr
        wide = nnz > np.iinfo(np.int32).max
        index_dtype = np.result_type(indices_dtype, np.int64 if wide else np.int32)
        sizing = {"shape": (nnz,)}
        if growable:
            # no larger than the bound: a small panel's file stays small
            chunk = max(1, min(GROWING_CHUNK, nnz))
            sizing = {"shape": (0,), "maxshape": (None,), "chunks": (chunk,)}
        self.data = group.create_dataset("data", dtype=dtype, **sizing)
        self.indices = group.create_dataset("indices", dtype=index_dtype, **sizing)
        self.indptr = group.create_dataset("indptr", shape=(self.shape[0] + 1,), dtype=index_dtype)
        self.indptr[0] = 0
        self.rows = 0
        self.nnz = 0

    def append(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> None:
        """Append rows given as CSR arrays (``indptr`` starting at 0)."""
        first = self.nnz
        self.append_values(data, indices)
        self.append_row_ends(np.asarray(indptr[1:], np.int64) + first)

    def append_values(self, data: np.ndarray, indices: np.ndarray) -> None:
        """Append non-zeros (a piece of some rows; their ends come by `append_row_ends`)."""
        size = len(data)
        if size and self.growable:
            self.data.resize((self.nnz + size,))
            self.indices.resize((self.nnz + size,))
        if size:
            dest = np.s_[self.nnz : self.nnz + size]
            self.data.write_direct(np.ascontiguousarray(data, self.data.dtype), dest_sel=dest)
            self.indices.write_direct(
                np.ascontiguousarray(indices, self.indices.dtype), dest_sel=dest
            )
        self.nnz += size

    def append_row_ends(self, ends: np.ndarray) -> None:
        """Append rows by their end offsets in the whole ``data`` array."""
        if len(ends):
            self.indptr[self.rows + 1 : self.rows + 1 + len(ends)] = ends
        self.rows += len(ends)

    def check_complete(self) -> None:
        if self.rows != self.shape[0] or self.nnz != len(self.data):
            raise RuntimeError(
                f"wrote {self.rows} rows / {self.nnz} non-zeros, expected "
                f"{self.shape[0]} / {len(self.data)}"
            )


@contextlib.contextmanager
def csr_h5ad_writer(
    path: str | os.PathLike,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    uns: dict,
    nnz: int,
    dtype,
    indices_dtype,
    obsm: dict | None = None,
    obs_as_given: bool = False,
    growable: bool = False,
) -> Iterator[CsrWriter]:
    """Write an h5ad at ``path`` (obs, var, uns, obsm by anndata) and yield a writer for X.

    Text columns of var, and of obs unless ``obs_as_given`` (its caller chose them), become
    categoricals where they repeat, as ``write_h5ad`` makes them. The caller appends all
    rows; the X group is checked complete on exit. ``growable``: ``nnz`` is a bound, not the
    count (see ``CsrWriter``).
    """
    import anndata as ad  # see the module's docstring

    adata = ad.AnnData(obs=obs, var=var, uns=uns, obsm=obsm)
    adata.strings_to_categoricals(adata.var if obs_as_given else None)  # None: obs and var
    adata.write_h5ad(path, convert_strings_to_categoricals=False)
    with h5py.File(path, "r+") as h5file:
        writer = CsrWriter(
            h5file.create_group("X"), (len(obs), len(var)), nnz, dtype, indices_dtype, growable
        )
        yield writer
        writer.check_complete()


@contextlib.contextmanager
def h5ad_writer(
    path: str | os.PathLike,
    obs: Table,
    var: Table,
    uns: dict[str, str],
    nnz: int,
    dtype,
    indices_dtype,
) -> Iterator[CsrWriter]:
    """Write an h5ad at ``path`` (obs, var, string-valued uns) and yield a writer for X,
    as `csr_h5ad_writer` does with anndata. X is checked complete on exit."""
    with h5py.File(path, "w") as h5file:
        encode(h5file, "anndata")
        write_table(h5file, "obs", obs)
        write_table(h5file, "var", var)
        for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            encode(h5file.create_group(key), "dict")
        for key, value in uns.items():
            text = h5file["uns"].create_dataset(key, data=np.array(value, dtype=STRINGS))
            encode(text, "string")
        writer = CsrWriter(
            h5file.create_group("X"), (len(obs), len(var)), nnz, dtype, indices_dtype
        )
        yield writer
        writer.check_complete()
