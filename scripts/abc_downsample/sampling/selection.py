"""Cell lists given by the user (``sampling.cells_file``, ``sampling.within``), in the forms
analysts have them, and which cells of the cell table they name.

- a table with a ``cell_label`` column (e.g. a ``downsampled_cells.csv`` of an earlier run);
- one cell label a line, with or without a header line;
- the ABC Atlas web app's cell-selection export: a CSV whose first column is ``Sample Id``
  (the cell table's ``abc_sample_id``), the others display names in any order.

Labels are this release's: one the cell table lacks is an error. An export names cells of
any dataset of the atlas (a MERFISH view's selection has no 10x cell at all): ids that match
no cell are left out, with their count in one warning line.
"""

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from abc_downsample.cells_csv import CELL_LABEL
from abc_downsample.errors import AbcError, few

log = logging.getLogger("abc_downsample.sampling.sample")

SAMPLE_ID = "Sample Id"  # the export's first column
SAMPLE_ID_COLUMN = "abc_sample_id"  # the cell table's column it holds


@dataclass(frozen=True)
class CellList:
    """A given list: its setting and path, which cell column its values are (``cell_label``
    or ``abc_sample_id``), the values (unique), and whether the first line may be a header
    (a one-column list: it is one when it names no cell)."""

    setting: str
    path: str
    column: str
    values: pa.Array
    maybe_header: bool = False

    @property
    def what(self) -> str:
        return f"sampling.{self.setting} {self.path}"


def read_cell_list(path, setting: str) -> CellList:
    """The list in ``path`` (any of the forms in the module's docstring)."""
    path = Path(path)
    what = f"sampling.{setting} {path}"
    if not path.is_file():
        raise AbcError(f"{what} does not exist: fix the path or set it to null")
    header = _first_line(path, what)
    if header and header[0] == SAMPLE_ID:
        values = _column(path, SAMPLE_ID, what)
        return CellList(setting, str(path), SAMPLE_ID_COLUMN, _unique(values, what))
    if CELL_LABEL in header:
        labels = _unique(_column(path, CELL_LABEL, what), what)
        return CellList(setting, str(path), CELL_LABEL, labels)
    if len(header) == 1:
        values = _column(path, None, what)
        return CellList(setting, str(path), CELL_LABEL, _unique(values, what), maybe_header=True)
    raise AbcError(
        f"{what} is not a cell list (its first line has {len(header)} fields and no "
        f"{CELL_LABEL}): give a CSV with a {CELL_LABEL} column, one cell label a line, or the ABC "
        f"Atlas web app's selection export (first column '{SAMPLE_ID}')"
    )


def _first_line(path: Path, what: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [field.strip() for field in next(csv.reader(handle), [])]
    except (UnicodeDecodeError, csv.Error) as err:
        raise AbcError(f"{what} is not a text CSV file ({err}): give a cell list") from None


def _column(path: Path, name: str | None, what: str) -> pa.ChunkedArray:
    """One column as text: ``name`` of the header, or (None) every line of a one-column
    file, its first line included."""
    if name is None:
        read = pcsv.ReadOptions(column_names=["value"], encoding="utf8")
        convert = pcsv.ConvertOptions(column_types={"value": pa.string()})
    else:
        read = pcsv.ReadOptions(encoding="utf8")
        convert = pcsv.ConvertOptions(column_types={name: pa.string()}, include_columns=[name])
    try:
        table = pcsv.read_csv(path, read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as err:
        reason = " ".join(str(err).split())
        raise AbcError(f"{what} is not a readable CSV file ({reason}): fix it") from None
    column = table.column(0)
    if name == SAMPLE_ID or name is None:  # names pasted by hand may carry spaces
        column = pc.utf8_trim_whitespace(column)
    return column


def _unique(values: pa.ChunkedArray, what: str) -> pa.Array:
    values = values.combine_chunks().drop_null()
    values = values.filter(pc.greater(pc.utf8_length(values), 0))
    if len(values) == 0:
        raise AbcError(f"{what} lists no cells: give a non-empty list")
    return pc.unique(values)


def check_matchable(cell_list: CellList, cell_columns, dataset_name: str, metadata_path) -> None:
    """An export needs the cell table's ``abc_sample_id`` (WMB-10X and WHB-10Xv3 have it)."""
    if cell_list.column == SAMPLE_ID_COLUMN and SAMPLE_ID_COLUMN not in cell_columns:
        raise AbcError(
            f"{cell_list.what} is an ABC Atlas web-app selection export ('{SAMPLE_ID}' = "
            f"{SAMPLE_ID_COLUMN}), but the {dataset_name} cell table {metadata_path} has no "
            f"{SAMPLE_ID_COLUMN} column to match it: give the cells' labels instead (a "
            f"{CELL_LABEL} column, or one label a line)"
        )


def listed_cells(cell_list: CellList, keys: pa.ChunkedArray, dataset_name: str) -> np.ndarray:
    """Mask of the cells whose ``keys`` (their labels or sample ids) the list names."""
    given = cell_list.values
    found = pc.is_in(given, value_set=keys)  # one hash set of the cell table's keys
    if cell_list.maybe_header and not found[0].as_py():
        log.info("%s: its first line %r names no cell: taken as a header", cell_list.what,
                 given[0].as_py())  # fmt: skip
        given, found = given[1:], found[1:]
        if len(given) == 0:
            raise AbcError(f"{cell_list.what} lists no cells: give a non-empty list")
    listed = pc.is_in(keys, value_set=given).to_numpy(zero_copy_only=False)
    unknown = pc.filter(given, pc.invert(found))
    if len(unknown) == 0:
        return listed
    if cell_list.column == CELL_LABEL:
        raise AbcError(
            f"{len(unknown)} cell label(s) of {cell_list.what} are not in the cell metadata, "
            f"e.g. {few(unknown.to_pylist())}: is it a list of this release?"
        )
    examples = few(unknown.to_pylist()[:3], 3)
    if len(unknown) == len(given):
        raise AbcError(
            f"none of the {len(given):,} Sample Ids of {cell_list.what} is a cell of the "
            f"{dataset_name} cell table: export the selection from a 10x view of "
            f"{dataset_name} (a MERFISH view's cells are not in it)"
        )
    log.warning(
        "%s: %d of its %d Sample Ids match no cell of the %s cell table (e.g. %s): left out",
        cell_list.what, len(unknown), len(given), dataset_name, examples,
    )  # fmt: skip
    return listed
