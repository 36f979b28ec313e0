"""Stratified sampling that keeps rare groups whole: the whole step, as a dataset's profile
says where its cells, groups and taxonomy are.

The flow: read the cell table once (the needed columns in memory, the others spilled to a
temporary file) and a membership table holding the group key, where the profile names one;
filter, group (a cell column or a taxonomy level), decide how many cells each group keeps
(`allocation`), draw that many cells per group (`drawing`), write the cell list, the tables
that explain it (`summaries`) and the sampled cells' full rows of the cell table, which the
final step takes its obs from instead of reading the cell table again.
Reproducibility does not depend on row order or threads (see `drawing`).
"""

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from abc_downsample.atomic import atomic_path
from abc_downsample.dataset.profile import Dataset, load_dataset
from abc_downsample.errors import AbcError, few
from abc_downsample.metadata.csv_out import write_csv
from abc_downsample.metadata.tables import (
    SpilledTable,
    arrow_frame,
    as_arrow_strings,
    cell_table_columns,
    read_cell_table,
    read_cell_table_once,
    write_cell_rows,
)
from abc_downsample.metadata.taxonomy import read_taxonomy
from abc_downsample.sampling.coding import CellTable, check_columns, filter_mask
from abc_downsample.sampling.drawing import select_cells
from abc_downsample.sampling.selection import check_matchable, listed_cells, read_cell_list
from abc_downsample.sampling.summaries import (
    coverage_floor,
    group_summary,
    level_views,
    log_figures,
)

log = logging.getLogger(__name__)

# downsampled_cells.csv names these columns alike for every dataset (the profile's names
# are renamed), then the group column and the profile's cells.keep
LABEL, MATRIX, DATASET_LABEL = "cell_label", "feature_matrix_label", "dataset_label"
# the settings that give a list of cells: exactly these cells; the population to sample
GIVEN = ("cells_file", "within")


def cell_columns(dataset: Dataset) -> list[str]:
    """The columns of downsampled_cells.csv (the keep columns where present), before the
    sampling group's own."""
    return list(dict.fromkeys([LABEL, dataset.cells.group, MATRIX, DATASET_LABEL,
                               *dataset.cells.keep]))  # fmt: skip


@dataclass
class Sample:
    """A sample and its explanation, ready to be written."""

    cells: pd.DataFrame  # cell_columns (+ the grouping column), sorted
    summary: pd.DataFrame  # one row per group
    levels: pd.DataFrame  # one row per taxonomy level and term
    rows: pa.Table  # the cells' rows of the cell table (every column, the group key joined)


def _selection(cell_lists, table: CellTable, dataset: Dataset, population) -> dict:
    """Mask of the cells each given list names (``cells_file``, ``within``), by setting."""
    masks = {}
    for cell_list in cell_lists:
        column = dataset.cells.label if cell_list.column == LABEL else cell_list.column
        keys = as_arrow_strings(table.cells[column])
        masks[cell_list.setting] = listed_cells(cell_list, keys, dataset.name)
        dropped = int((masks[cell_list.setting] & ~population).sum())
        if dropped:
            log.warning("%d cells of %s are excluded by sampling.filters", dropped,
                        cell_list.what)  # fmt: skip
    return masks


def _cell_list(table: CellTable, selected: np.ndarray, group: str, dataset) -> pd.DataFrame:
    """The selected cells' output columns, sorted by matrix then label."""
    c = dataset.cells
    renamed = {c.label: LABEL, c.matrix: MATRIX, c.dataset: DATASET_LABEL}
    keep = [k for k in c.keep if k in table.cells.columns]
    columns = dict.fromkeys([c.label, c.group, c.matrix, c.dataset, *keep, group])
    rows = np.flatnonzero(selected)
    out = {}
    for column in columns:
        if column in table.cells.columns:
            values = table.cells[column].iloc[rows].to_numpy(dtype=object)
        else:  # a taxonomy column
            coded_column = table.column(column)
            values = np.asarray(
                pd.Categorical.from_codes(coded_column.codes[rows], coded_column.categories)
            )
        out[renamed.get(column, column)] = values
    return pd.DataFrame(out).sort_values([MATRIX, LABEL], ignore_index=True)


def _required_columns(dataset: Dataset) -> dict[str, str]:
    """Cell-table column -> the profile key that names it."""
    cells = dataset.cells
    wanted = {cells.label: "cells.label", cells.matrix: "cells.matrix",
              cells.dataset: "cells.dataset"}  # fmt: skip
    if cells.membership is None:
        wanted[cells.group] = "cells.group"
    return wanted


def _check_cell_table(metadata_path, metadata_columns, dataset: Dataset) -> None:
    wanted = _required_columns(dataset)
    missing = [c for c in wanted if c not in metadata_columns]
    if missing:  # before sampling.cluster_column, which would be blamed for it
        raise AbcError(
            f"{metadata_path} lacks the column(s) {few(missing)} of the {dataset.name} cell "
            f"table (it has {few(list(metadata_columns))}): check abc.release and abc.dataset, "
            f"or {dataset.fix(wanted[missing[0]])}"
        )


def read_membership(path, dataset: Dataset) -> pa.Table:
    """The membership table's (label, group) columns, the first row of each cell."""
    label, group = dataset.cells.membership_label, dataset.cells.group
    columns = cell_table_columns(path)
    for column, key in ((label, "cells.membership.label"), (group, "cells.group")):
        if column not in columns:
            raise AbcError(f"{path} has no column {column!r} (it has {few(columns)}): "
                           f"{dataset.fix(key)}")  # fmt: skip
    table = read_cell_table(path, [label, group], label)
    first = ~arrow_frame(table.select([label]))[label].duplicated().to_numpy()
    return table if first.all() else table.filter(first)


@dataclass
class _CellRows:
    """The cell table's full rows, to take the sample's from. With a membership table the
    CellTable's rows are the cell table's rows ``kept`` (those with a group), the group key
    joined from ``members`` (one per CellTable row)."""

    table: SpilledTable
    kept: np.ndarray | None = None
    group: str | None = None
    members: pa.ChunkedArray | None = None

    def take(self, selected: np.ndarray) -> pa.Table:
        rows = np.flatnonzero(selected)
        taken = self.table.take(rows if self.kept is None else self.kept[rows])
        if self.members is None:
            return taken
        return _with_column(taken, self.group, self.members.take(rows))


def _with_column(table: pa.Table, name: str, column) -> pa.Table:
    """``table`` with ``column`` as ``name``: in place of one of that name, else last."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


def _join_membership(cells: pd.DataFrame, cell_rows: _CellRows, membership_path, dataset):
    """The group key from the membership table, into the sampling columns and the cells'
    rows; cells without a row there are left out."""
    membership = read_membership(membership_path, dataset)
    group = dataset.cells.group
    keys = arrow_frame(membership).set_index(dataset.cells.membership_label)[group]
    where = keys.index.get_indexer(cells[dataset.cells.label].astype(object).to_numpy())
    values = np.asarray(keys.array.take(where, allow_fill=True))  # missing where absent
    absent = pd.isna(values)
    if absent.all():
        raise AbcError(f"no cell of the cell table is in {membership_path}: "
                       f"{dataset.fix('cells.membership')}")  # fmt: skip
    cells = cells.assign(**{group: values})
    if absent.any():
        log.warning("%d cells are not in %s: left out", int(absent.sum()), membership_path)
        cells = cells[~absent].reset_index(drop=True)
    kept = np.flatnonzero(~absent)
    members = membership.column(group).take(where[kept])
    return cells, _CellRows(cell_rows.table, kept, group, members)


def _load_table(metadata_path, taxonomy_paths, group, filters, dataset, membership_path,
                spill, cell_lists=()):  # fmt: skip
    """Check the column names first (cheap), then read the cell table once: the sampling's
    columns as pandas (the CellTable), the others to ``spill`` for the sample's full rows."""
    metadata_columns = cell_table_columns(metadata_path)
    _check_cell_table(metadata_path, metadata_columns, dataset)
    for cell_list in cell_lists:
        check_matchable(cell_list, metadata_columns, dataset.name, metadata_path)
    known = list(metadata_columns) + ([dataset.cells.group] if membership_path else [])
    taxonomy_columns = list(dataset.taxonomy.columns)
    check_columns([group], known, taxonomy_columns, "sampling.cluster_column")
    check_columns(list(filters), known, taxonomy_columns, "sampling.filters column")
    by_id = [c.column for c in cell_lists if c.column != LABEL]  # abc_sample_id
    wanted = [*_required_columns(dataset), *dataset.cells.keep, group, *filters, *by_id]
    wanted = [c for c in wanted if c in metadata_columns]
    cell_rows = _CellRows(read_cell_table_once(metadata_path, wanted, dataset.cells.label, spill))
    cells = arrow_frame(cell_rows.table.kept)
    if membership_path:
        cells, cell_rows = _join_membership(cells, cell_rows, membership_path, dataset)
    taxonomy = read_taxonomy(taxonomy_paths, dataset, cells[dataset.cells.group])
    return CellTable(cells, taxonomy, dataset.cells.group, metadata_path), cell_rows


def sample_cells(metadata_path, taxonomy_paths, sampling: dict, dataset=None,
                 membership_path=None, spill_dir=None) -> Sample:  # fmt: skip
    """Read, filter, group and sample the cells as the ``sampling`` config says (or take
    the cells of ``sampling['cells_file']``), and explain the result. ``dataset`` is the
    profile (default WMB-10X); ``taxonomy_paths`` its taxonomy files (see ``taxonomy``);
    ``spill_dir`` where the cell table's other columns wait (default: the temp directory)."""
    # the file has no name: nothing is left behind, even by a killed job
    with tempfile.TemporaryFile(dir=spill_dir) as spill:
        return _sample(metadata_path, taxonomy_paths, sampling, dataset or load_dataset(),
                       membership_path, spill)  # fmt: skip


def _sample(metadata_path, taxonomy_paths, sampling, dataset, membership_path, spill):
    group = sampling.get("cluster_column") or dataset.cells.group
    filters = sampling.get("filters") or {}
    cell_lists = [read_cell_list(sampling[key], key) for key in GIVEN if sampling.get(key)]
    table, cell_rows = _load_table(
        metadata_path, taxonomy_paths, group, filters, dataset, membership_path, spill,
        cell_lists,
    )  # fmt: skip
    population = filter_mask(table, filters)
    given = _selection(cell_lists, table, dataset, population)
    if "within" in given:  # the population to sample from: the selection's cells
        population &= given["within"]
    groups = table.column(group)
    if (groups.codes[population] < 0).any():
        raise AbcError(
            f"some cells have no {group}: filter them out or choose another cluster_column"
        )
    n_groups = len(groups.categories)
    sizes = np.bincount(groups.codes[population], minlength=n_groups)
    labels = as_arrow_strings(table.cells[dataset.cells.label])
    if "cells_file" in given:  # exactly the listed cells (of the population)
        selected = given["cells_file"] & population
        counts = np.bincount(groups.codes[selected], minlength=n_groups)
    else:
        rows = np.flatnonzero(population)
        selected = np.zeros(len(table), dtype=bool)
        selected[rows], counts = select_cells(
            labels if len(rows) == len(table) else labels.take(rows),
            groups.codes[rows],
            n_groups,
            target=int(sampling["target_cells"]),
            min_size=int(sampling["min_cluster_size"]),
            strategy=sampling["strategy"],
            seed=int(sampling["seed"]),
            floor=int(sampling.get("min_cells_per_group") or 0),
        )
    summary = group_summary(group, groups, sizes > 0, sizes, counts, table)
    levels = level_views(table, groups.codes, n_groups, sizes, counts, population, selected,
                         coverage_floor(sampling))  # fmt: skip
    log_figures(summary, sampling)
    cells = _cell_list(table, selected, group, dataset)
    _check_one_gene_table(cells, dataset)
    return Sample(cells, summary, levels, cell_rows.take(selected))


def _check_one_gene_table(cells: pd.DataFrame, dataset: Dataset) -> None:
    """Matrices with different genes cannot be one AnnData: say how to sample one."""
    tables = {m: dataset.genes.table_for(m).name for m in cells[MATRIX].unique()}
    if len(set(tables.values())) > 1:
        first = sorted(tables)[0]
        raise AbcError(
            f"the sample spans matrices with different genes ({', '.join(sorted(tables))}): "
            f"sample one at a time, e.g. sampling.filters {{{MATRIX}: [{first}]}}"
        )


def write_sample(sample: Sample, cells_out, summary_out, levels_out, rows_out) -> None:
    """Write the three tables and the cells' rows, each atomically."""
    for frame, path in (
        (sample.cells, cells_out),
        (sample.summary, summary_out),
        (sample.levels, levels_out),
    ):
        with atomic_path(path) as tmp:
            write_csv(frame, tmp)
    with atomic_path(rows_out) as tmp:
        write_cell_rows(sample.rows, tmp)


def sample_to_files(metadata_path, taxonomy_paths, sampling, cells_out, summary_out, levels_out,
                    rows_out, dataset=None, membership_path=None):  # fmt: skip
    """The whole sampling step: read, sample, write; returns the ``Sample``."""
    Path(rows_out).parent.mkdir(parents=True, exist_ok=True)
    sample = sample_cells(metadata_path, taxonomy_paths, sampling, dataset, membership_path,
                          spill_dir=Path(rows_out).parent)  # fmt: skip
    write_sample(sample, cells_out, summary_out, levels_out, rows_out)
    return sample
