"""Per-cell tables beside the cell table, joined to it on the cell label: the membership
table holding the group key (newer datasets; not every cell has a row) and the embedding
table holding the atlas's 2-d coordinates. Joined with Arrow's hash lookups: no Python
object per label, on 8.6 M cells.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from abc_downsample.errors import AbcError, few
from abc_downsample.metadata.tables import (
    as_arrow_strings,
    cell_table_columns,
    malformed,
)
from abc_downsample.sampling.hashing import hash_labels

# the group of cells without one, with sampling.unassigned: keep
UNASSIGNED = "unassigned"
BLOCK_SIZE = 1 << 22  # an embedding table is streamed in blocks of this many bytes
PIECE = 1 << 20  # matched labels whose text is compared at once


def require_columns(path, wanted: dict[str, str], fix) -> None:
    """``wanted``: column -> the profile key naming it; ``fix(key)`` ends the message."""
    present = cell_table_columns(path)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise AbcError(f"{path} has no column(s) {few(missing)} (it has {few(present)}): "
                       f"{fix(wanted[missing[0]])}")  # fmt: skip


def positions(cell_labels, side_labels) -> pa.Array:
    """Each cell's row in the side table (its labels ``side_labels``; a label listed twice:
    its first row), null where absent. The labels are matched by their 64-bit hashes,
    sorted (8 bytes a label, where a hash table of the text takes ~10 times that on SEA-AD's
    8.6 M cells), then the text of every match is compared."""
    cells, side = as_arrow_strings(cell_labels), as_arrow_strings(side_labels)
    where = np.full(len(cells), -1, dtype=np.int64)
    if len(side):
        side_hashes = hash_labels(side)
        order = np.argsort(side_hashes, kind="stable")  # equal hashes: the first row first
        side_hashes = side_hashes[order]
        cell_hashes = hash_labels(cells)
        at = np.searchsorted(side_hashes, cell_hashes)
        np.minimum(at, len(side_hashes) - 1, out=at)
        matched = np.flatnonzero(side_hashes[at] == cell_hashes)
        where[matched] = order[at[matched]]
        del side_hashes, order, cell_hashes, at, matched  # before the text is compared
    _check_text(cells, side, where)
    pa.default_memory_pool().release_unused()  # the compared pieces' memory, back to the system
    return pa.array(where, mask=where < 0)


def _check_text(cells: pa.ChunkedArray, side: pa.ChunkedArray, where: np.ndarray) -> None:
    """Compare the text of matched labels (in pieces: bounded memory); a match whose text
    differs (two labels of one hash, 1 in 10^12 on the atlas) is looked up exactly."""
    hits = np.flatnonzero(where >= 0)
    for start in range(0, len(hits), PIECE):
        rows = hits[start : start + PIECE]
        same = pc.equal(cells.take(rows), side.take(where[rows])).to_numpy(zero_copy_only=False)
        for row in rows[~same]:
            exact = pc.index_in(cells.take([row]), value_set=side)[0].as_py()
            where[row] = -1 if exact is None else exact


def as_text_with(values: pa.ChunkedArray | pa.Array, missing: str) -> pa.Array:
    """Group keys as text, ``missing`` where a cell has none (sampling.unassigned: keep)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return pc.fill_null(values.cast(pa.string()), missing)


def rows_for_labels(path, label: str, columns: list[str], labels) -> pa.Table:
    """``columns`` of a per-cell table for ``labels`` only, in their order (null where a
    label has no row), read in blocks: a table of millions of rows is never held whole."""
    wanted = as_arrow_strings(labels).combine_chunks()
    options = pcsv.ConvertOptions(
        include_columns=[label, *columns], column_types={label: pa.string()}
    )
    try:
        reader = pcsv.open_csv(path, pcsv.ReadOptions(block_size=BLOCK_SIZE), None, options)
        parts = [batch.filter(pc.is_in(batch.column(label), value_set=wanted)) for batch in reader]
    except (pa.ArrowInvalid, OSError) as err:
        raise malformed(path, err) from None
    found = pa.Table.from_batches(parts, schema=reader.schema)
    where = positions(wanted, found.column(label))
    return pa.table({name: found.column(name).take(where) for name in columns})
