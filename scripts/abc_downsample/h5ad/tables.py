"""obs/var tables of an h5ad read and written with h5py alone, in anndata's on-disk format.

A subset job copies some rows of ``obs`` and all of ``var`` from a matrix file into a new
h5ad. Doing that through pandas and anndata costs each of the 24 jobs over a second of
imports; the encodings anndata writes for the ABC files (string arrays, numeric arrays,
categoricals of strings) are copied here as raw HDF5 values instead. `read_table` returns
None for any other encoding, and the caller falls back to anndata.

What is written is what ``AnnData(obs=..., var=..., uns=...).write_h5ad`` writes for the
same tables, including its one rewrite: a string column with repeated values becomes a
categorical with naturally sorted categories (``strings_to_categoricals``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h5py
import numpy as np

from abc_downsample.h5ad.encoding import STRINGS, encode, encoding_of
from abc_downsample.units import MiB

if TYPE_CHECKING:
    import pandas as pd

# Below this share of the rows, a string column's selected rows are read one by one (h5py
# point selection): h5py makes a Python object of every string it reads. Numbers are read
# whole up to WHOLE_BYTES, which costs less than point selection.
FEW_ROWS = 0.1
WHOLE_BYTES = 16 * MiB


@dataclass
class Column:
    """One column as stored: ``values`` (strings as bytes) or categorical ``codes``."""

    kind: str  # "string-array", "array" or "categorical"
    values: np.ndarray
    categories: np.ndarray | None = None  # strings, for a categorical
    ordered: bool = False


@dataclass
class Table:
    """An h5ad dataframe: its index (strings) and columns in order."""

    index_name: str
    index: np.ndarray
    columns: dict[str, Column] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)


def read_table(
    group: h5py.Group, rows: np.ndarray | None, index_name: str, index: list[str] | None = None
) -> Table | None:
    """Rows ``rows`` (in that order; None: all) of an h5ad dataframe group, its index named
    ``index_name`` (``index``: its values, when the caller has them); None if a column's
    encoding is not one this module copies."""
    names = [str(n) for n in group.attrs.get("column-order", [])]
    if index_name in names or "_index" in names:
        return None  # anndata refuses or rewrites such tables
    stored = group[group.attrs["_index"]]
    if encoding_of(stored) != "string-array" or not _is_strings(stored):
        return None
    order = None if rows is None else np.argsort(rows, kind="stable")
    columns = {name: _column(group[name], rows, order) for name in names}
    if None in columns.values():
        return None
    values = _take(stored, rows, order) if index is None else np.array(index, dtype=object)
    return Table(index_name, values, columns)


def _column(node: h5py.Group | h5py.Dataset, rows, order) -> Column | None:
    kind = encoding_of(node)
    if kind == "categorical" and isinstance(node, h5py.Group):
        categories = node.get("categories")
        codes = node.get("codes")
        if not (_is_strings(categories) and isinstance(codes, h5py.Dataset)):
            return None  # numeric categories: rare, left to anndata
        return Column(
            kind,
            _codes(_take(codes, rows, order), len(categories)),
            categories[...],
            bool(node.attrs.get("ordered", False)),
        )
    if kind == "string-array" and _is_strings(node):
        return Column(kind, _take(node, rows, order))
    if kind == "array" and _is_numbers(node):
        return Column(kind, _take(node, rows, order))
    return None


def _is_strings(node) -> bool:
    """A 1-d variable-length string dataset (fixed-length ones are left to anndata)."""
    if not isinstance(node, h5py.Dataset) or node.ndim != 1:
        return False
    info = h5py.check_string_dtype(node.dtype)
    return info is not None and info.length is None


def _is_numbers(node) -> bool:
    return isinstance(node, h5py.Dataset) and node.ndim == 1 and node.dtype.kind in "biuf"


def _take(dset: h5py.Dataset, rows, order) -> np.ndarray:
    """``dset[rows]`` for any order of unique rows (all rows for None)."""
    if rows is None:
        return dset[...]
    cheap = dset.dtype.kind != "O" and dset.size * dset.dtype.itemsize <= WHOLE_BYTES
    if cheap or len(rows) >= FEW_ROWS * len(dset) or len(rows) == 0:
        return dset[...][rows]
    values = dset[rows[order]]  # h5py reads increasing rows
    out = np.empty_like(values)
    out[order] = values
    return out


def _codes(codes: np.ndarray, n_categories: int) -> np.ndarray:
    """Codes in the dtype pandas gives them (the smallest for the category count)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_categories < np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    return codes.astype(np.int64, copy=False)


def _as_written(column: Column) -> Column:
    """anndata's ``strings_to_categoricals``: strings with repeats become a categorical
    whose categories are naturally sorted ("L2" before "L10")."""
    if column.kind != "string-array" or len(set(column.values.tolist())) == len(column.values):
        return column
    from natsort import natsorted  # only tables with repeated strings (rare) need it

    texts = [v.decode() if isinstance(v, bytes) else v for v in column.values.tolist()]
    categories = natsorted(set(texts))
    code_of = {text: code for code, text in enumerate(categories)}
    codes = np.array([code_of[text] for text in texts], np.int64)
    return Column("categorical", _codes(codes, len(categories)), np.array(categories, object))


def _write_strings(group: h5py.Group, name: str, values: np.ndarray) -> None:
    encode(group.create_dataset(name, data=values, dtype=STRINGS), "string-array")


def write_table(parent: h5py.Group, key: str, table: Table) -> None:
    """``table`` as anndata writes a dataframe at ``parent[key]``."""
    group = parent.create_group(key)
    encode(group, "dataframe")
    group.attrs["_index"] = table.index_name
    group.attrs["column-order"] = list(table.columns)
    _write_strings(group, table.index_name, table.index)
    for name, column in table.columns.items():
        column = _as_written(column)
        if column.kind == "string-array":
            _write_strings(group, name, column.values)
        elif column.kind == "array":
            encode(group.create_dataset(name, data=column.values), "array")
        else:
            categorical = group.create_group(name)
            encode(categorical, "categorical")
            categorical.attrs["ordered"] = column.ordered
            encode(categorical.create_dataset("codes", data=column.values), "array")
            _write_strings(categorical, "categories", column.categories)


def read_obs(h5file: h5py.File) -> pd.DataFrame:
    """The cell table of an h5ad file, without touching X."""
    from anndata.io import read_elem  # pandas/anndata: see the module's docstring

    return read_elem(h5file["obs"])


def read_var(h5file: h5py.File) -> pd.DataFrame:
    """The gene table of an h5ad file, without touching X."""
    from anndata.io import read_elem

    return read_elem(h5file["var"])


def read_obs_index(h5file: h5py.File) -> pd.Index:
    """Only the cell labels of an h5ad file (cheaper than the whole obs table)."""
    import pandas as pd
    from anndata.io import read_elem

    obs = h5file["obs"]
    return pd.Index(read_elem(obs[obs.attrs["_index"]]), name=obs.attrs["_index"])


def read_obs_labels(h5file: h5py.File) -> np.ndarray:
    """The cell labels of an h5ad file as stored (``bytes`` for string datasets): decoding
    half a million labels costs more than the lookup they serve."""
    obs = h5file["obs"]
    labels = obs[obs.attrs["_index"]]
    if isinstance(labels, h5py.Dataset) and h5py.check_string_dtype(labels.dtype):
        return labels[...].astype(object, copy=False)
    from anndata.io import read_elem  # an index as anndata never writes it: rare

    return np.asarray(read_elem(labels), dtype=object)
