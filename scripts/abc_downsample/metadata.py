"""Reading the cell, gene and taxonomy tables of a release.

The cell table has ~4 M rows (1 GB): it is read with pyarrow's columnar CSV reader, keeping
only the columns asked for, or streamed in batches keeping only the rows asked for. Only an
empty field is missing: `NA` and `nan` are values like any other.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .errors import AbcError, few

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
        raise _malformed(path, err) from None
    return reader.schema.names


def cell_table_columns(path: str | Path) -> list[str]:
    """The column names of a CSV file (read from its first block only)."""
    return _header(Path(path))


def _malformed(path: Path, err: Exception) -> AbcError:
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


def _column_types(
    path: Path, columns: Sequence[str] | None, dictionaries: bool, label: str = "cell_label"
) -> dict:
    """Types for a streamed read, inferred from a large first block (later blocks must
    conform). A column empty there is read as strings so later values cannot break it;
    with ``dictionaries`` strings become dictionaries (categoricals), except unique labels."""
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=INFER_BLOCK_SIZE),
        convert_options=_convert_options(include_columns=columns or []),
    )
    types = {}
    for field in reader.schema:
        kind = pa.string() if pa.types.is_null(field.type) else field.type
        if dictionaries and kind == pa.string() and field.name not in UNIQUE_COLUMNS:
            kind = pa.dictionary(pa.int32(), pa.string())
        types[field.name] = kind
    for name in {"cell_label", label} & set(types):
        types[name] = pa.string()
    return types


def _stream(
    path: Path, columns: Sequence[str] | None, dictionaries: bool, keep=None, block=BLOCK_SIZE,
    label: str = "cell_label",
):
    """Read ``path`` block by block into one table, filtering each batch with ``keep``."""
    try:
        types = _column_types(path, columns, dictionaries, label)
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=block),
            convert_options=_convert_options(include_columns=columns or [], column_types=types),
        )
        batches = [batch if keep is None else batch.filter(keep(batch)) for batch in reader]
        return pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowInvalid, OSError) as err:
        raise _malformed(path, err) from None


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_LENGTH_KEY = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64 that scrambles every bit."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _hash_chunk(chunk: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string: sum of (byte + 1) * key[position], plus the length."""
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)
    offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1].astype(np.int64)
    data = np.frombuffer(chunk.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    starts = offsets[:-1] - offsets[0]
    position = np.arange(len(data)) - np.repeat(starts, lengths)
    keys = _mix(np.arange(1, int(lengths.max(initial=0)) + 1, dtype=np.uint64))  # per position
    terms = (data.astype(np.uint64) + np.uint64(1)) * keys[position]
    sums = np.add.reduceat(terms, starts) if len(data) else np.zeros(len(chunk), np.uint64)
    return sums + lengths.astype(np.uint64) * _LENGTH_KEY


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


def hash_labels(labels, seed: int = 0) -> np.ndarray:
    """A 64-bit hash of each label, keyed by ``seed``: the same for a label wherever it is."""
    chunks = [_hash_chunk(chunk) for chunk in as_arrow_strings(labels).chunks if len(chunk)]
    hashes = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
    return _mix(hashes ^ _mix(np.array([seed], dtype=np.uint64)))


def _label_filter(labels: pa.Array, label: str = "cell_label"):
    """A batch filter for the rows whose cell_label hashes like one of ``labels``: a sorted
    array lookup, much cheaper per batch than building Arrow's hash set each time."""
    wanted = np.sort(hash_labels(labels))

    def keep(batch: pa.RecordBatch) -> pa.Array:
        if len(wanted) == 0:
            return pa.array(np.zeros(batch.num_rows, dtype=bool))
        hashes = hash_labels(batch.column(label))
        where = np.minimum(np.searchsorted(wanted, hashes), len(wanted) - 1)
        return pa.array(wanted[where] == hashes)

    return keep


def read_cell_columns(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Only ``columns`` of the cell table, fast and compact.

    Strings come back as categoricals, except unique labels (cell_label, ...), which stay
    Arrow-backed strings; numbers keep their inferred type; an empty field is missing.
    Streaming in 1 MB blocks: the peak memory is the result plus a few blocks.
    """
    path = Path(path)
    columns = list(dict.fromkeys(columns))
    _require(path, _header(path), columns)
    table = _stream(path, columns, dictionaries=True)
    return table.to_pandas(
        types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get, self_destruct=True
    )


def read_cells_for_labels(
    path: str | Path, labels: Sequence[str], label: str = "cell_label"
) -> pd.DataFrame:
    """All columns of the cell table for ``labels`` only, indexed by ``label`` in their order.

    The file is streamed in batches and each batch filtered at once, so memory follows the
    selection, not the file. Labels absent from the file raise an ``AbcError``.
    """
    path = Path(path)
    _require(path, _header(path), [label])
    wanted = pa.array(pd.unique(np.asarray(labels, dtype=object)), type=pa.string())
    table = _stream(path, None, False, keep=_label_filter(wanted, label), label=label)
    table = table.filter(pc.is_in(table.column(label), value_set=wanted))  # exact
    cells = table.to_pandas().set_index(label)
    missing = pd.Index(labels).difference(cells.index)
    if len(missing):
        raise AbcError(
            f"{len(missing)} cell label(s) are not in {path}, e.g. {few(missing)}: "
            "check the cell list, or that the metadata is complete and of the same release"
        )
    cells = cells[~cells.index.duplicated()].loc[list(labels)]
    with pd.option_context("future.no_silent_downcasting", True):
        return cells.fillna(np.nan)  # missing strings as NaN, like pandas.read_csv


def read_small_csv(path: str | Path, required: Iterable[str], **kwargs) -> pd.DataFrame:
    """A small table read whole, its ``required`` columns checked (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise AbcError(f"{path} does not exist: check the path or rerun the download step")
    try:
        table = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise _malformed(path, err) from None
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
