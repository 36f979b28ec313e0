"""Reading the cell, gene and taxonomy tables of a release.

The cell table has ~4 M rows (1 GB): it is streamed in blocks with pyarrow's columnar CSV
reader, text as dictionaries. Only an empty field is missing: `NA` and `nan` are values like
any other. Sampling reads it once (`read_cell_table_once`): only the columns it needs are
converted; the sampled cells' full rows are then parsed from their own lines of the file
(`SampledTable.take`: one pass finding line breaks, no second parse) into a small Arrow
file (`write_cell_rows`) that the final step reads instead of the cell table
(`read_cell_rows`).
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather

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
SCAN_BLOCK = 16 << 20  # reads of the sampled rows' lines
NEWLINE = ord("\n")


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


def _stream(path: Path, columns: Sequence[str] | None, label: str, fixed: Sequence[str] = (),
            rows: np.ndarray | None = None) -> pa.Table:  # fmt: skip
    """Read ``columns`` of ``path`` (all if None) block by block into one table, only the
    ``rows`` (increasing positions) if given; a text value in a ``fixed`` column is an
    error, in another column it makes that column text."""

    def read(types: dict) -> pa.Table:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=BLOCK_SIZE),
            convert_options=_convert_options(include_columns=columns or [], column_types=types),
        )
        return pa.Table.from_batches(list(_batches(reader, rows)), schema=reader.schema)

    try:
        return retyped(read, _column_types(path, columns, label), _header(path), fixed)
    except (pa.ArrowInvalid, OSError) as err:
        raise malformed(path, err) from None


def _batches(reader, rows: np.ndarray | None):
    """The reader's batches, or of each only the ``rows`` it holds (a block at a time)."""
    start = 0
    for batch in reader:
        if rows is None:
            yield batch
            continue
        first, last = np.searchsorted(rows, [start, start + batch.num_rows])
        yield batch.take(pa.array(rows[first:last] - start))
        start += batch.num_rows


MISTYPED = re.compile(r"In CSV column #(\d+): CSV conversion error to (?:u?int|double|float)")


def retyped(read, types: dict, header: Sequence[str], fixed: Sequence[str] = ()) -> pa.Table:
    """``read(types)``; a column the first block typed as numbers whose later rows hold
    text (SEA-AD's ``alignment_job_id`` mixes integers and hashes) is read again as text,
    unless it is ``fixed`` (a column the caller reads for its type: the text is an error).
    ``header``: every column of the file (Arrow numbers the failing one in the file)."""
    while True:
        try:
            return read(types)
        except pa.ArrowInvalid as err:
            match = MISTYPED.search(str(err))
            name = header[int(match.group(1))] if match else None
            if name in (None, *fixed) or pa.types.is_dictionary(types.get(name, pa.string())):
                raise
            types[name] = pa.dictionary(pa.int32(), pa.string())


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
    return _stream(path, columns, label, fixed=columns or ())


@dataclass
class SampledTable:
    """A cell table read once for sampling: some columns in memory (``kept``); the full
    rows of the few cells kept come at the end from their own lines of the file."""

    kept: pa.Table  # the columns asked for, the label among them
    path: Path
    label: str
    names: list[str]  # every column, in the file's order

    def keep_only_labels(self) -> None:
        """Drop the kept columns but the labels: ``take`` needs only them (a second pass
        then reads the others)."""
        self.kept = self.kept.select([self.label])

    def take(self, rows: np.ndarray) -> pa.Table:
        """Every column of ``rows`` (increasing positions), parsed from their lines alone.

        A line is a row unless a quoted field holds a line break or a line is blank: the
        parsed labels then differ from the kept ones, and the other columns are read by a
        second pass instead (Arrow's column projection)."""
        rows = np.asarray(rows, dtype=np.int64)
        lines = _lines_of(self.path, rows + 1)  # line 0: the header
        try:
            kept_types = {field.name: field.type for field in self.kept.schema}
            parsed = _parse_lines(self.path, lines, self.label, kept_types)
        except pa.ArrowInvalid:
            parsed = None
        expected = self.kept.column(self.label).take(rows)
        if parsed is not None and parsed.column(self.label).equals(expected):
            return parsed
        return self._second_pass(rows)

    def _second_pass(self, rows: np.ndarray) -> pa.Table:
        """The other columns of ``rows`` by Arrow's column projection, a block at a time."""
        others = [name for name in self.names if name not in self.kept.column_names]
        rest = _stream(self.path, others, self.label, rows=rows)
        kept = self.kept.take(rows)
        tables = {name: kept if name in kept.column_names else rest for name in self.names}
        return pa.table({name: tables[name].column(name) for name in self.names})


def _lines_of(path: Path, lines: np.ndarray) -> bytes:
    """The file's first line, then its lines numbered ``lines`` (increasing, 0 the first),
    each with its line break: one pass of SCAN_BLOCK reads into one buffer, numpy finding
    the line breaks and gathering the lines' bytes (no Python object per line)."""
    with open(path, "rb") as handle:
        header = handle.readline()
    buf, filled, seen, pieces = np.empty(SCAN_BLOCK, np.uint8), 0, 0, [header]
    with open(path, "rb", buffering=0) as handle:
        while read := handle.readinto(memoryview(buf)[filled:]):
            filled += read
            ends = np.flatnonzero(buf[:filled] == NEWLINE) + 1
            if len(ends) == 0:  # no whole line yet: a line longer than the buffer
                buf = np.concatenate([buf, np.empty_like(buf)]) if filled == len(buf) else buf
                continue
            pieces.append(_gather_lines(buf, ends, lines - seen))
            seen, complete = seen + len(ends), int(ends[-1])
            buf[: filled - complete] = buf[complete:filled]  # the cut line, to the front
            filled -= complete
    if filled:  # a last line without a line break
        last = np.r_[buf[:filled], NEWLINE].astype(np.uint8)
        pieces.append(_gather_lines(last, np.array([len(last)]), lines - seen))
    return b"".join(pieces)


def _gather_lines(data: np.ndarray, ends: np.ndarray, wanted: np.ndarray) -> bytes:
    """The bytes of lines ``wanted`` (numbered from 0 here; others ignored) of ``data``,
    whose lines end at ``ends``, joined."""
    wanted = wanted[(wanted >= 0) & (wanted < len(ends))]
    stops = ends[wanted]
    starts = np.where(wanted > 0, ends[wanted - 1], 0)
    lengths = stops - starts
    # byte k of the output is byte k - (bytes before its line) + (its line's start)
    shift = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return data[shift + np.arange(len(shift))].tobytes()


def _parse_lines(path: Path, lines: bytes, label: str, kept_types: dict) -> pa.Table:
    """``lines`` of the cell table, its header first, typed as a whole read types them
    (``kept_types``: the types the kept columns were read with)."""

    def read(types: dict) -> pa.Table:
        options = _convert_options(column_types=types)
        return pcsv.read_csv(pa.BufferReader(lines), convert_options=options)

    types = {**_column_types(path, None, label), **kept_types}
    return retyped(read, types, _header(path))


def read_cell_table_once(path: str | Path, columns: Sequence[str], label: str) -> SampledTable:
    """The cell table read once: ``columns`` (the ``label`` among them) in memory, as
    ``read_cell_table`` reads them; the other columns of the rows sampling keeps come
    later from their lines (``SampledTable.take``), never from a parse of every row."""
    path = Path(path)
    present = _header(path)
    columns = list(dict.fromkeys([*columns, label]))
    _require(path, present, columns)
    return SampledTable(_stream(path, columns, label, fixed=columns), path, label, present)


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
