"""Per-cell tables beside the cell table, joined to it on the cell label: the membership
table holding the group key (newer datasets; not every cell has a row) and the embedding
table holding the atlas's 2-d coordinates. Joined with Arrow's hash lookups: no Python
object per label, on 8.6 M cells.
"""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from abc_downsample.errors import AbcError, few
from abc_downsample.metadata.tables import (
    as_arrow_strings,
    cell_table_columns,
    malformed,
    read_cell_table,
)

# the group of cells without one, with sampling.unassigned: keep
UNASSIGNED = "unassigned"
BLOCK_SIZE = 1 << 22  # an embedding table is streamed in blocks of this many bytes


def require_columns(path, wanted: dict[str, str], fix) -> None:
    """``wanted``: column -> the profile key naming it; ``fix(key)`` ends the message."""
    present = cell_table_columns(path)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise AbcError(f"{path} has no column(s) {few(missing)} (it has {few(present)}): "
                       f"{fix(wanted[missing[0]])}")  # fmt: skip


def read_side_table(path, label: str, columns: list[str]) -> pa.Table:
    """``label`` and ``columns`` of a per-cell table (a label listed twice: ``positions``
    finds its first row)."""
    return read_cell_table(path, [label, *columns], label)


def positions(cell_labels, side_labels) -> pa.Array:
    """Each cell's row in the side table (its labels ``side_labels``), null where absent."""
    found = pc.index_in(as_arrow_strings(cell_labels), value_set=as_arrow_strings(side_labels))
    return found.combine_chunks() if isinstance(found, pa.ChunkedArray) else found


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
