"""Stratified sampling that keeps rare groups whole, and the tables that explain it.

The flow: read the few needed columns of the cell table, filter, group (a metadata column
or a taxonomy level), decide how many cells each group keeps (a strategy), draw that many
cells per group, write the cell list, the per-group summary and the per-level view.

Reproducibility does not depend on row order or threads: each cell's random priority is a
hash of its label and the seed, and a group keeps its cells of lowest priority. That is a
uniform draw per group (as sorting by label, then shuffling, would be) without sorting 4 M
strings. The strategies' own tie-breaks use a generator seeded with the same seed and walk
the groups in sorted order.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .atomic import atomic_path
from .errors import AbcError, few
from .metadata import (
    as_arrow_strings,
    cell_table_columns,
    hash_labels,
    read_cell_columns,
    read_taxonomy,
)

log = logging.getLogger(__name__)

TAXONOMY_LEVELS = ("class", "subclass", "supertype", "cluster")
CELL_COLUMNS = (
    "cell_label",
    "cluster_alias",
    "feature_matrix_label",
    "dataset_label",
    "library_method",
)
SMALL_RANGE = 10_000_000  # integer columns spanning fewer values are coded by counting

# ---------------------------------------------------------------- strategies
# A strategy gets the group sizes, the target, the rare-group threshold and a generator,
# and returns per-group counts: every group under min_size whole, counts summing to target.
# `allocate` has already handled targets at or above the population and infeasible ones.
Strategy = Callable[[np.ndarray, int, int, np.random.Generator], np.ndarray]


def _rare_whole(sizes: np.ndarray, target: int, min_size: int):
    """Counts with the rare groups whole, the mask of the others, and what remains to draw."""
    rare = sizes < min_size
    counts = np.where(rare, sizes, 0).astype(np.int64)
    return counts, ~rare, target - int(counts.sum())


def proportional(sizes, target, min_size, rng):
    """One common fraction for the larger groups; largest remainders (ties by rng) round up."""
    counts, large, budget = _rare_whole(sizes, target, min_size)
    big = sizes[large].astype(np.int64)
    total = int(big.sum())
    if budget == 0 or total == 0:
        return counts
    share, remainder = np.divmod(big * budget, total)  # exact integer arithmetic
    extra = budget - int(share.sum())
    order = np.lexsort((rng.random(len(big)), -remainder))
    share[order[:extra]] += 1
    counts[large] = share
    return counts


def pooled(sizes, target, min_size, rng):
    """The R recipe: one uniform draw over the pooled cells of the larger groups.

    A uniform draw of n pooled cells is, per group, multivariate hypergeometric counts and
    then a uniform draw inside each group, which is what `draw_cells` does.
    """
    counts, large, budget = _rare_whole(sizes, target, min_size)
    if budget > 0:
        counts[large] = rng.multivariate_hypergeometric(sizes[large].astype(np.int64), budget)
    return counts


def _water_level(sizes: np.ndarray, budget: int) -> int:
    """The largest cap with sum(min(size, cap)) <= budget (binary search)."""
    low, high = 0, int(sizes.max(initial=0))
    while low < high:
        cap = (low + high + 1) // 2
        if int(np.minimum(sizes, cap).sum()) <= budget:
            low = cap
        else:
            high = cap - 1
    return low


def capped(sizes, target, min_size, rng):
    """Each larger group keeps min(size, cap), the cap as high as the target allows; the
    few cells left over go one each to groups above the cap, chosen by rng."""
    counts, large, budget = _rare_whole(sizes, target, min_size)
    big = sizes[large].astype(np.int64)
    cap = _water_level(big, budget)
    share = np.minimum(big, cap)
    leftover = budget - int(share.sum())
    if leftover:
        share[rng.choice(np.flatnonzero(big > cap), leftover, replace=False)] += 1
    counts[large] = share
    return counts


STRATEGIES: dict[str, Strategy] = {
    "proportional": proportional,
    "pooled": pooled,
    "capped": capped,
}


def allocate(sizes, target: int, min_size: int, strategy: str, rng) -> np.ndarray:
    """Per-group counts for ``strategy``, after the checks every strategy shares."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if strategy not in STRATEGIES:
        raise AbcError(f"unknown sampling.strategy {strategy!r}: use one of {sorted(STRATEGIES)}")
    population = int(sizes.sum())
    if population == 0:
        raise AbcError("no cells to sample from: relax sampling.filters")
    if target >= population:
        log.warning(
            "target_cells=%d is not below the population of %d cells: taking all of them",
            target,
            population,
        )
        return sizes.copy()
    rare = sizes < min_size
    if int(sizes[rare].sum()) > target:
        raise AbcError(
            f"target_cells={target} is below the {int(sizes[rare].sum())} cells of the "
            f"{int(rare.sum())} groups smaller than min_cluster_size={min_size}, which are "
            "kept whole: raise target_cells or lower min_cluster_size"
        )
    counts = np.asarray(STRATEGIES[strategy](sizes, target, min_size, rng), dtype=np.int64)
    if counts.sum() != target or (counts < 0).any() or (counts > sizes).any():
        raise RuntimeError(f"strategy {strategy!r} broke its contract")  # a bug, not user's
    return counts


# ---------------------------------------------------------------- drawing
def label_priorities(labels, seed: int) -> np.ndarray:
    """A pseudo-random uint64 per cell, a function of its label and the seed only."""
    labels = as_arrow_strings(labels)
    if labels.null_count or (len(labels) and pc.min(pc.utf8_length(labels)).as_py() == 0):
        raise AbcError("some cells have an empty cell_label: the cell table is damaged")
    return hash_labels(labels, seed)


def draw_cells(codes: np.ndarray, priorities: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Boolean mask: in each group ``g`` the ``counts[g]`` cells of lowest priority.

    Sorting one uint64 key per cell (group in the high bits) gives each group's threshold;
    a tie at a threshold (a hash collision) falls back to an exact sort.
    """
    counts = np.asarray(counts, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    bits = max(1, (len(counts) - 1).bit_length())
    key = (codes.astype(np.uint64) << np.uint64(64 - bits)) | (priorities >> np.uint64(bits))
    sizes = np.bincount(codes, minlength=len(counts))
    starts = np.cumsum(sizes) - sizes
    taking = counts > 0
    threshold = np.zeros(len(counts), dtype=np.uint64)
    threshold[taking] = np.sort(key)[starts[taking] + counts[taking] - 1]
    selected = taking[codes] & (key <= threshold[codes])
    if selected.sum() == counts.sum():
        return selected
    order = np.lexsort((priorities, codes))
    rank = np.arange(len(codes)) - starts[codes[order]]
    selected = np.zeros(len(codes), dtype=bool)
    selected[order] = rank < counts[codes[order]]
    return selected


def select_cells(labels, group_codes, n_groups: int, *, target, min_size, strategy, seed):
    """Sample cells: (mask of the selected cells, per-group counts).

    ``labels`` are the cells' labels, ``group_codes`` their group (0 .. n_groups-1). The
    result depends on the set of (label, group) pairs and the arguments, not on row order.
    """
    group_codes = np.asarray(group_codes, dtype=np.int64)
    sizes = np.bincount(group_codes, minlength=n_groups)
    counts = allocate(sizes, target, min_size, strategy, np.random.default_rng(seed))
    return draw_cells(group_codes, label_priorities(labels, seed), counts), counts


# ---------------------------------------------------------------- columns and filters


@dataclass
class Coded:
    """A column as integer codes per cell (-1 = missing) and its sorted categories."""

    codes: np.ndarray
    categories: pd.Index


def _recode(codes: np.ndarray, categories: pd.Index) -> Coded:
    """Drop unused categories and sort the others; -1 (missing) stays -1. Counting, not
    sorting, the per-cell codes: O(cells), unlike pandas' remove_unused_categories."""
    codes = codes.astype(np.int64) + 1
    used = np.flatnonzero(np.bincount(codes, minlength=len(categories) + 1)[1:])
    order = categories[used].argsort()
    lookup = np.full(len(categories) + 1, -1, dtype=np.int64)
    lookup[used[order] + 1] = np.arange(len(used))
    return Coded(lookup[codes], categories[used[order]])


def _coded(series: pd.Series) -> Coded:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return _recode(series.cat.codes.to_numpy(), pd.Index(series.cat.categories))
    values = series.to_numpy()
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low < SMALL_RANGE:  # e.g. cluster_alias: count instead of hashing
            return _recode(values - low, pd.Index(np.arange(low, high + 1)))
    codes, categories = pd.factorize(series, sort=True)
    return Coded(codes.astype(np.int64), pd.Index(categories))


class CellTable:
    """The cell columns sampling needs, with taxonomy columns joined on cluster_alias."""

    def __init__(self, cells: pd.DataFrame, taxonomy: pd.DataFrame, metadata_path):
        self.cells = cells
        self.taxonomy = taxonomy
        self.clusters = _coded(cells["cluster_alias"])
        self._coded: dict[str, Coded] = {"cluster_alias": self.clusters}
        missing = self.clusters.categories.difference(taxonomy.index)
        if len(missing) or (self.clusters.codes < 0).any():
            shown = few(missing) if len(missing) else "(empty)"
            raise AbcError(
                f"cluster_alias {shown} in {metadata_path} are not in the taxonomy: "
                "use the taxonomy of the same release"
            )
        self.cluster_terms = taxonomy.loc[self.clusters.categories]

    def __len__(self) -> int:
        return len(self.cells)

    def column(self, name: str) -> Coded:
        if name not in self._coded:
            if name in self.cells.columns:
                self._coded[name] = _coded(self.cells[name])
            else:  # a taxonomy column: code the clusters' terms, then look them up per cell
                terms = _coded(self.cluster_terms[name])
                self._coded[name] = Coded(terms.codes[self.clusters.codes], terms.categories)
        return self._coded[name]


def _check_columns(wanted: Sequence[str], metadata_columns, taxonomy_columns, what: str):
    valid = list(metadata_columns) + [c for c in taxonomy_columns if c not in metadata_columns]
    unknown = [c for c in wanted if c not in valid]
    if unknown:
        raise AbcError(
            f"{what} {few(unknown)} is neither a cell metadata nor a taxonomy column: "
            f"use one of {', '.join(valid)}"
        )


def filter_mask(table: CellTable, filters: dict) -> np.ndarray:
    """Cells whose columns take one of the given values (all filters at once)."""
    keep = np.ones(len(table), dtype=bool)
    for column, values in (filters or {}).items():
        coded = table.column(column)
        names = coded.categories.astype(str)
        wanted = [str(v) for v in values]
        unmatched = [v for v in wanted if v not in set(names)]
        if unmatched:
            raise AbcError(
                f"sampling.filters: {column} value(s) {few(unmatched)} match no cell: "
                f"valid values include {few(list(names))}"
            )
        allowed = np.append(np.asarray(names.isin(wanted)), False)  # index -1 = missing
        keep &= allowed[coded.codes]
    return keep


# ---------------------------------------------------------------- the sample
@dataclass
class Sample:
    """A sample and its explanation, ready to be written."""

    cells: pd.DataFrame  # CELL_COLUMNS (+ the grouping column), sorted
    summary: pd.DataFrame  # one row per group
    levels: pd.DataFrame  # one row per taxonomy level and term


def _read_given_labels(path) -> pa.Array:
    path = Path(path)
    if not path.is_file():
        raise AbcError(f"sampling.cells_file {path} does not exist: fix the path or set it null")
    if "cell_label" not in cell_table_columns(path):
        raise AbcError(f"sampling.cells_file {path} has no cell_label column: add one")
    labels = read_cell_columns(path, ["cell_label"])["cell_label"]
    labels = as_arrow_strings(labels).combine_chunks().drop_null()
    if len(labels) == 0:
        raise AbcError(f"sampling.cells_file {path} lists no cells: give a non-empty list")
    return pc.unique(labels)


def _given_selection(labels, given: pa.Array, population: np.ndarray, path) -> np.ndarray:
    """Mask of the listed cells; labels unknown to the metadata are an error."""
    listed = pc.is_in(labels, value_set=given).to_numpy(zero_copy_only=False)
    if listed.sum() < len(given):
        unknown = pc.filter(given, pc.invert(pc.is_in(given, value_set=labels)))
        raise AbcError(
            f"{len(unknown)} cell label(s) of sampling.cells_file {path} are not in the cell "
            f"metadata, e.g. {few(unknown.to_pylist())}: is it a list of this release?"
        )
    dropped = int((listed & ~population).sum())
    if dropped:
        log.warning("%d listed cells are excluded by sampling.filters", dropped)
    return listed & population


def _summary(group: str, groups: Coded, present, sizes, counts, table: CellTable):
    summary = pd.DataFrame(
        {
            "group": groups.categories[present],
            "size": sizes[present],
            "selected": counts[present],
            "kept_whole": counts[present] == sizes[present],
        }
    )
    if group == "cluster_alias":
        terms = table.taxonomy.reindex(summary["group"])
        for level in TAXONOMY_LEVELS:
            summary[level] = terms[level].to_numpy()
    return summary


def _levels(table: CellTable, group_codes, n_groups, whole, population, selected):
    """Per taxonomy level and term: cells before/after sampling, and the sampling groups
    present in the term (``(term, group)`` pairs) and how many of them were kept whole."""
    cluster = table.clusters.codes[population]
    pair_index, pair = pd.factorize(cluster * n_groups + group_codes[population])  # hashing
    pairs = pd.DataFrame(
        {
            "group": pair % n_groups,
            "before": np.bincount(pair_index, minlength=len(pair)),
            "after": np.bincount(pair_index, selected[population], len(pair)).astype(np.int64),
        }
    )
    pair_cluster = pair // n_groups
    views = []
    for level in TAXONOMY_LEVELS:
        terms = _coded(table.cluster_terms[level])
        views.append(_level_view(level, terms, pairs.assign(term=terms.codes[pair_cluster]), whole))
    return pd.concat(views, ignore_index=True)


def _level_view(level: str, terms: Coded, pairs: pd.DataFrame, whole) -> pd.DataFrame:
    cells = pairs.groupby("term")[["before", "after"]].sum()
    groups = pairs.drop_duplicates(["term", "group"])
    groups = groups.assign(whole=whole[groups["group"]]).groupby("term")["whole"]
    return pd.DataFrame(
        {
            "level": level,
            "term": terms.categories[cells.index],
            "cells_before": cells["before"].to_numpy(),
            "cells_after": cells["after"].to_numpy(),
            "groups_before": groups.size().reindex(cells.index).to_numpy(),
            "groups_kept_whole": groups.sum().reindex(cells.index).to_numpy().astype(np.int64),
        }
    )


def _cell_list(table: CellTable, selected: np.ndarray, group: str) -> pd.DataFrame:
    """The selected cells' output columns, sorted by matrix then label."""
    columns = list(CELL_COLUMNS) + ([group] if group not in CELL_COLUMNS else [])
    rows = np.flatnonzero(selected)
    out = {}
    for column in columns:
        if column in table.cells.columns:
            out[column] = table.cells[column].iloc[rows].to_numpy(dtype=object)
        else:  # a taxonomy column
            coded = table.column(column)
            values = pd.Categorical.from_codes(coded.codes[rows], coded.categories)
            out[column] = np.asarray(values)
    cells = pd.DataFrame(out)
    return cells.sort_values(["feature_matrix_label", "cell_label"], ignore_index=True)


def _load_table(metadata_path, taxonomy_path, group: str, filters: dict) -> CellTable:
    """Check the column names first (cheap), then read only the needed cell columns."""
    metadata_columns = cell_table_columns(metadata_path)
    missing = [c for c in CELL_COLUMNS if c not in metadata_columns]
    if missing:  # before sampling.cluster_column, which would be blamed for it
        raise AbcError(
            f"{metadata_path} lacks the column(s) {few(missing)} of an ABC Atlas cell table: "
            "it is not the release's cell_metadata.csv; check abc.release"
        )
    taxonomy = read_taxonomy(taxonomy_path)
    _check_columns([group], metadata_columns, taxonomy.columns, "sampling.cluster_column")
    _check_columns(list(filters), metadata_columns, taxonomy.columns, "sampling.filters column")
    missing_levels = [level for level in TAXONOMY_LEVELS if level not in taxonomy.columns]
    if missing_levels:
        raise AbcError(
            f"{taxonomy_path} lacks the taxonomy level(s) {few(missing_levels)}: use "
            "views/cluster_to_cluster_annotation_membership_pivoted.csv of the release"
        )
    wanted = [*CELL_COLUMNS, group, *filters]
    cells = read_cell_columns(metadata_path, [c for c in wanted if c in metadata_columns])
    return CellTable(cells, taxonomy, metadata_path)


def sample_cells(metadata_path, taxonomy_path, sampling: dict) -> Sample:
    """Read, filter, group and sample the cells as the ``sampling`` config says (or take
    the cells of ``sampling['cells_file']``), and explain the result."""
    group = sampling.get("cluster_column") or "cluster_alias"
    filters = sampling.get("filters") or {}
    cells_file = sampling.get("cells_file")
    given = _read_given_labels(cells_file) if cells_file else None
    table = _load_table(metadata_path, taxonomy_path, group, filters)
    population = filter_mask(table, filters)
    groups = table.column(group)
    if (groups.codes[population] < 0).any():
        raise AbcError(
            f"some cells have no {group}: filter them out or choose another cluster_column"
        )
    n_groups = len(groups.categories)
    sizes = np.bincount(groups.codes[population], minlength=n_groups)
    labels = as_arrow_strings(table.cells["cell_label"])
    if given is not None:
        selected = _given_selection(labels, given, population, cells_file)
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
        )
    summary = _summary(group, groups, sizes > 0, sizes, counts, table)
    levels = _levels(table, groups.codes, n_groups, counts == sizes, population, selected)
    _log_figures(summary, sampling)
    return Sample(_cell_list(table, selected, group), summary, levels)


def _log_figures(summary: pd.DataFrame, sampling: dict) -> None:
    rare = summary["size"] < int(sampling.get("min_cluster_size", 0))
    log.info(
        "population %d cells in %d groups; %d groups (%d cells) under min_cluster_size=%s "
        "kept whole; %d cells drawn from the others (%s); %d cells selected",
        summary["size"].sum(),
        len(summary),
        rare.sum(),
        summary.loc[rare, "selected"].sum(),
        sampling.get("min_cluster_size"),
        summary.loc[~rare, "selected"].sum(),
        "cells_file" if sampling.get("cells_file") else sampling.get("strategy"),
        summary["selected"].sum(),
    )


def write_csv(frame: pd.DataFrame, path) -> None:
    """CSV without index; pyarrow's fast writer when no field needs quoting, else pandas.
    Booleans are written True/False either way (pandas' spelling)."""
    flags = frame.select_dtypes(bool).columns
    frame = frame.assign(**{c: np.where(frame[c], "True", "False") for c in flags})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    needs_quotes = any(
        pc.any(pc.match_substring_regex(column, r'[,"\r\n]')).as_py()
        for column in table.columns
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    )
    if needs_quotes:
        frame.to_csv(path, index=False)
        return
    options = pcsv.WriteOptions(quoting_style="none", include_header=False)
    with open(path, "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pcsv.write_csv(table, sink, write_options=options)


def write_sample(sample: Sample, cells_out, summary_out, levels_out) -> None:
    """Write the three tables, each atomically."""
    for frame, path in (
        (sample.cells, cells_out),
        (sample.summary, summary_out),
        (sample.levels, levels_out),
    ):
        with atomic_path(path) as tmp:
            write_csv(frame, tmp)


def sample_to_files(metadata_path, taxonomy_path, sampling, cells_out, summary_out, levels_out):
    """The whole sampling step: read, sample, write; returns the ``Sample``."""
    sample = sample_cells(metadata_path, taxonomy_path, sampling)
    write_sample(sample, cells_out, summary_out, levels_out)
    return sample
