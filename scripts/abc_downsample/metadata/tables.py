"""Reading the cell, gene and taxonomy tables of a release.

The cell table has ~4 M rows (1 GB): it is streamed in blocks with pyarrow's columnar CSV
reader, text as dictionaries. Only an empty field is missing: `NA` and `nan` are values like
any other. Sampling reads it once (`read_cell_table_once`): the columns it needs in memory,
the others spilled to a temporary file, from which the sampled cells' full rows are taken
(`SpilledTable.take`) into a small Arrow file (`write_cell_rows`) that the final step reads
instead of the cell table (`read_cell_rows`).
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc

from abc_downsample.errors import AbcError, few

CELL_METADATA_COLUMNS = (
    "cell_label",
    "cell_barcode",
    "barcoded_cell_sample_label",
    "library_label",
    "feature_matrix_label",
    "entity",
    "brain_section_label",
    "library_method",
    "region_of_interest_acronym",
    "donor_label",
    "donor_genotype",
    "donor_sex",
    "dataset_label",
    "x",
    "y",
    "cluster_alias",
    "abc_sample_id",
)  # cell_metadata.csv of WMB-10X, in the bucket's order
BLOCK_SIZE = 1 << 20  # streamed blocks: small ones keep the peak memory low
INFER_BLOCK_SIZE = 4 << 20  # column types are inferred from the first ~16 k rows
UNIQUE_COLUMNS = ("cell_label", "cell_barcode", "abc_sample_id")  # never worth a dictionary


def _header(path: Path) -> list[str]:
    """Column names of a CSV file, or a one-line error if it cannot be read."""
    if not path.is_file():
        raise AbcError(f"{path} does not exist: check the path or rerun the download step")
    try:
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16))
    except (pa.ArrowInvalid, OSError) as err:
        raise malformed(path, err) from None
    return reader.schema.names


def cell_table_columns(path: str | Path) -> list[str]:
    """The column names of a CSV file (read from its first block only)."""
    return _header(Path(path))


def malformed(path: Path, err: Exception) -> AbcError:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return AbcError(
        f"{path} is not a readable CSV ({reason}): fix or replace it "
        "(a downloaded file: delete it and rerun)"
    )


def _require(path: Path, present: Sequence[str], wanted: Iterable[str]) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise AbcError(
            f"{path} lacks column(s) {few(missing)} (it has {few(present)}): "
            "is it the right file, and complete?"
        )


def _convert_options(**kwargs) -> pcsv.ConvertOptions:
    return pcsv.ConvertOptions(
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False, **kwargs
    )


def _column_types(path: Path, columns: Sequence[str] | None, label: str) -> dict:
    """Types for a streamed read, inferred from a large first block (later blocks must
    conform). A column empty there is read as strings so later values cannot break it;
    strings become dictionaries (categoricals), except unique labels."""
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=INFER_BLOCK_SIZE),
        convert_options=_convert_options(include_columns=columns or []),
    )
    types = {}
    for field in reader.schema:
        kind = pa.string() if pa.types.is_null(field.type) else field.type
        if kind == pa.string() and field.name not in UNIQUE_COLUMNS:
            kind = pa.dictionary(pa.int32(), pa.string())
        types[field.name] = kind
    for name in {"cell_label", label} & set(types):
        types[name] = pa.string()
    return types


def _stream(path: Path, columns: Sequence[str] | None, label: str, spill=None) -> pa.Table:
    """Read ``columns`` of ``path`` (all if None) block by block into one table; with
    ``spill`` (a binary file), read every column and write the others there. A column whose
    type the first block got wrong (numbers, then text further down: SEA-AD's
    ``alignment_job_id`` mixes integers and hashes) is read again as text."""
    wanted = None if spill else columns
    try:
        types = _column_types(path, wanted, label)
    except (pa.ArrowInvalid, OSError) as err:
        raise malformed(path, err) from None
    while True:
        try:
            return _read_blocks(path, columns, wanted, types, spill)
        except pa.ArrowInvalid as err:
            column = _mistyped_column(err, path, wanted, types)
            if column is None:
                raise malformed(path, err) from None
            types[column] = pa.dictionary(pa.int32(), pa.string())
            if spill is not None:
                spill.seek(0)
                spill.truncate()
        except OSError as err:
            raise malformed(path, err) from None


def _read_blocks(path: Path, columns, wanted, types: dict, spill) -> pa.Table:
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=BLOCK_SIZE),
        convert_options=_convert_options(include_columns=wanted or [], column_types=types),
    )
    if spill is None:
        return pa.Table.from_batches(list(reader), schema=reader.schema)
    schema = reader.schema
    others = [n for n in schema.names if n not in columns]
    kept = []
    out = _spilling(ipc.new_stream, pa.PythonFile(spill, mode="w"), _select(schema, others))
    for batch in reader:
        kept.append(batch.select(columns))
        _spilling(out.write_batch, batch.select(others))
    _spilling(out.close)
    return pa.Table.from_batches(kept, schema=_select(schema, columns))


MISTYPED = re.compile(r"In CSV column #(\d+): CSV conversion error to (?:u?int|double|float)")


def _mistyped_column(err: Exception, path: Path, wanted, types: dict) -> str | None:
    """The column a conversion error names, if it was read as numbers (else None)."""
    match = MISTYPED.search(str(err))
    if match is None:
        return None
    names = list(wanted) if wanted else _header(path)
    index = int(match.group(1))
    name = names[index] if index < len(names) else None
    numeric = name in types and not pa.types.is_dictionary(types[name])
    return name if numeric and not pa.types.is_string(types[name]) else None


def _select(schema: pa.Schema, names: Sequence[str]) -> pa.Schema:
    return pa.schema([schema.field(name) for name in names])


def _spilling(call, *args):
    """``call(*args)``, a write to the spill file: its failure (a full disk) is said as
    such, not as a malformed CSV."""
    try:
        return call(*args)
    except OSError as err:
        raise AbcError(
            f"could not write the cell table's other columns to a temporary file ({err}): "
            "free some disk space in the output directory's .abc folder"
        ) from None


def as_arrow_strings(labels) -> pa.ChunkedArray:
    """Labels (Arrow, pandas or a sequence) as Arrow strings, zero-copy where possible."""
    if isinstance(labels, pd.Series):
        labels = labels.array
    if not isinstance(labels, (pa.Array, pa.ChunkedArray)):
        labels = pa.array(labels, from_pandas=True)
    if isinstance(labels, pa.Array):
        labels = pa.chunked_array([labels])
    if not (pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type)):
        labels = labels.cast(pa.string())
    return labels


def read_cell_table(
    path: str | Path, columns: Sequence[str] | None = None, label: str = "cell_label"
) -> pa.Table:
    """``columns`` of the cell table (all if None) as one Arrow table, compact.

    Text comes as dictionaries, except unique labels (``label``, cell_barcode, ...), which
    stay strings; numbers keep their inferred type; an empty field is missing. Streaming in
    1 MB blocks: the peak memory is the result plus a few blocks.
    """
    path = Path(path)
    present = _header(path)
    if columns is not None:
        columns = list(dict.fromkeys(columns))
        _require(path, present, columns)
    return _stream(path, columns, label)


@dataclass
class SpilledTable:
    """A cell table read once: some columns in memory, the others in a temporary file (an
    Arrow IPC stream, block by block), for taking the rows of a few cells at the end."""

    kept: pa.Table  # the columns asked for
    spill: BinaryIO  # the others
    names: list[str]  # every column, in the file's order

    def take(self, rows: np.ndarray) -> pa.Table:
        """Every column of ``rows`` (increasing positions), one block at a time."""
        self.spill.seek(0)
        stream = ipc.open_stream(pa.PythonFile(self.spill, mode="r"))
        spilled = _take_by_block(stream, rows, stream.schema)
        kept = _take_by_block(self.kept.to_batches(), rows, self.kept.schema)
        columns = {n: (kept if n in kept.column_names else spilled).column(n) for n in self.names}
        return pa.table(columns)


def _take_by_block(batches, rows: np.ndarray, schema: pa.Schema) -> pa.Table:
    """``rows`` of a table given as batches; a block at a time, never a whole column."""
    taken, start = [], 0
    for batch in batches:
        low, high = np.searchsorted(rows, [start, start + batch.num_rows])
        taken.append(batch.take(pa.array(rows[low:high] - start)))
        start += batch.num_rows
    return pa.Table.from_batches(taken, schema=schema)


def read_cell_table_once(
    path: str | Path, columns: Sequence[str], label: str, spill: BinaryIO
) -> SpilledTable:
    """The cell table in one pass: ``columns`` in memory (as ``read_cell_table`` reads
    them), the others written to ``spill`` (an empty binary file) as they are read."""
    path = Path(path)
    present = _header(path)
    columns = list(dict.fromkeys(columns))
    _require(path, present, columns)
    return SpilledTable(_stream(path, columns, label, spill), spill, present)


def arrow_frame(table: pa.Table, self_destruct: bool = False) -> pd.DataFrame:
    """A table of ``read_cell_table`` as pandas: dictionaries as categoricals, strings
    Arrow-backed (no Python object per value)."""
    return table.to_pandas(
        types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get, self_destruct=self_destruct
    )


def read_cell_columns(
    path: str | Path, columns: Sequence[str], label: str = "cell_label"
) -> pd.DataFrame:
    """Only ``columns`` of the cell table, as pandas (see ``read_cell_table``)."""
    return arrow_frame(read_cell_table(path, columns, label), self_destruct=True)


def write_cell_rows(table: pa.Table, path: str | Path) -> None:
    """Rows of the cell table (as ``read_cell_table`` types them) to an Arrow IPC file."""
    feather.write_feather(table.unify_dictionaries().combine_chunks(), path)


def read_cell_rows(path: str | Path, labels: Sequence[str], label: str) -> pa.Table:
    """The rows of ``labels``, in their order, from a file of ``write_cell_rows`` (a label
    listed twice: its first row). Labels absent from the file raise an ``AbcError``."""
    path = Path(path)
    if not path.is_file():
        raise AbcError(f"{path} does not exist: rerun the workflow (sample_cells writes it)")
    try:
        table = feather.read_table(path, memory_map=False)
    except (pa.ArrowInvalid, OSError) as err:
        raise AbcError(f"{path} is not readable ({err}): delete it and rerun") from None
    _require(path, table.column_names, [label])
    index = pd.Index(table.column(label).to_numpy(zero_copy_only=False))
    if index.has_duplicates:
        first = ~index.duplicated()
        table, index = table.filter(first), index[first]
    rows = index.get_indexer(pd.Index(labels, dtype=object))
    if (rows < 0).any():
        missing = pd.Index(labels)[rows < 0]
        raise AbcError(
            f"{len(missing)} cell(s) of the subsets are not in {path}, e.g. {few(missing)}: "
            "it is stale; delete it and rerun"
        )
    return table.take(rows)


def read_small_csv(path: str | Path, required: Iterable[str], **kwargs) -> pd.DataFrame:
    """A small table read whole, its ``required`` columns checked (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise AbcError(f"{path} does not exist: check the path or rerun the download step")
    try:
        table = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise malformed(path, err) from None
    _require(path, list(table.columns), required)
    return table


def read_indexed_csv(path: str | Path, index: str, **kwargs) -> pd.DataFrame:
    """A small table indexed by its ``index`` column, which must be unique."""
    table = read_small_csv(path, [index], **kwargs)
    duplicated = table[index][table[index].duplicated()]
    if len(duplicated):
        raise AbcError(
            f"{path} lists {index} {few(duplicated.unique())} more than once: "
            "delete the file and download it again"
        )
    return table.set_index(index)


def read_genes(path: str | Path, id_column: str = "gene_identifier") -> pd.DataFrame:
    """The gene table indexed by its gene id column; only empty fields are missing."""
    return read_indexed_csv(path, id_column, keep_default_na=False, na_values=[""])
