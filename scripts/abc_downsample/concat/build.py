"""Subsets to the final h5ad, streaming: X is copied block by block, never held whole.

The result is scanpy/cellxgene-ready: the atlas UMAP in ``obsm["X_umap"]``, the atlas
colours in ``uns["<level>_colors"]`` (one per category, in category order), every group
column categorical.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from abc_downsample.atomic import atomic_path
from abc_downsample.cells_csv import CELL_LABEL
from abc_downsample.dataset.profile import Dataset, load_dataset
from abc_downsample.errors import AbcError, few, unreadable
from abc_downsample.h5ad.csr import check_csr_group
from abc_downsample.h5ad.tables import read_obs_index, read_var
from abc_downsample.h5ad.writer import csr_h5ad_writer
from abc_downsample.metadata.tables import read_cell_rows, read_genes
from abc_downsample.metadata.taxonomy import TaxonomyTable, read_taxonomy
from abc_downsample.provenance import UNS_KEY
from abc_downsample.sampling.side_tables import UNASSIGNED
from abc_downsample.units import CONCAT_BLOCK_NNZ

log = logging.getLogger(__name__)

# Non-zeros copied per block: 4 M x (4 + 4 bytes) = 32 MB of buffers; bigger blocks
# measured no faster (h5py's per-call cost is small against 16 MB reads).
DEFAULT_BLOCK_NNZ = CONCAT_BLOCK_NNZ
# A term the colour table does not list (scanpy needs one colour per category).
MISSING_TERM_COLOR = "#808080"
# A text column of the cell table with more distinct values than this share of the cells
# names cells (cell_barcode, abc_sample_id), it does not group them: text, not a category
# (scanpy's rank_genes_groups and R's factors are for groups).
PER_CELL_SHARE = 0.5


@dataclass
class SubsetX:
    """What the final X needs to know of one subset file before copying it."""

    path: str
    n_rows: int
    n_cols: int
    nnz: int
    dtype: np.dtype
    indices_dtype: np.dtype


@dataclass
class ConcatStats:
    rows: int
    nnz: int
    files: int

    def summary(self) -> str:
        return f"concatenated {self.files} subsets: {self.rows:,} cells, {self.nnz:,} non-zeros"


def _subset_x(path: str) -> SubsetX:
    with unreadable(f"subset {os.path.basename(path)}"), h5py.File(path, "r") as h5file:
        group = h5file["X"]
        check_csr_group(group)
        n_rows, n_cols = (int(n) for n in group.attrs["shape"])
        return SubsetX(
            str(path), n_rows, n_cols, len(group["data"]), group["data"].dtype,
            group["indices"].dtype,
        )  # fmt: skip


def subset_labels(paths: list[str]) -> pd.Index:
    """Cell labels of all subsets, in the subsets' order; each cell once."""
    parts = []
    for path in paths:
        with unreadable(f"subset {os.path.basename(path)}"), h5py.File(path, "r") as h5file:
            parts.append(read_obs_index(h5file))
    labels = pd.Index(np.concatenate([p.to_numpy(object) for p in parts]), name=CELL_LABEL)
    if labels.has_duplicates:
        raise AbcError(
            f"cells {few(labels[labels.duplicated()].unique())} are in more than one subset: "
            "delete data/subsets and rerun"
        )
    return labels


def common_var(paths: list[str]) -> pd.DataFrame:
    """The genes table shared by all subsets (an `AbcError` if any differs)."""
    first = None
    for path in paths:
        with unreadable(f"subset {os.path.basename(path)}"), h5py.File(path, "r") as h5file:
            var = read_var(h5file)
        if first is None:
            first = var
        elif not (var.index.equals(first.index) and var.equals(first)):
            raise AbcError(
                f"{os.path.basename(path)} has other genes (or another gene order) than "
                f"{os.path.basename(paths[0])}: the release's matrix files disagree, which "
                "rebuilding cannot fix; choose another abc.release or report it"
            )
    first.index = first.index.rename("gene_identifier")
    return first


def check_cells_match(labels: pd.Index, sample: pd.Index, cells_csv) -> None:
    """The subsets must hold exactly the cells of the sample (else they are stale)."""
    missing, extra = sample.difference(labels), labels.difference(sample)
    if len(missing) or len(extra):
        raise AbcError(
            f"the subsets do not match {cells_csv} ({len(missing)} cells missing, e.g. "
            f"{few(missing)}; {len(extra)} extra, e.g. {few(extra)}): they are stale; "
            "delete data/subsets and rerun"
        )


def build_obs(labels: pd.Index, sample_rows, taxonomy: TaxonomyTable,
              dataset: Dataset) -> pd.DataFrame:  # fmt: skip
    """All cell metadata columns of ``labels`` (in order), from the sample's rows of the cell
    table (``sample_rows``, written by sampling: the group key already joined where the
    profile has a membership table), and the taxonomy's columns."""
    cells = dataset.cells
    table = read_cell_rows(sample_rows, list(labels), cells.label)
    obs = _obs_frame(table.drop_columns([cells.label]))
    obs.index = pd.Index(labels, name=CELL_LABEL)
    terms = taxonomy.terms
    rows = _aliases(terms.index).get_indexer(_aliases(obs[cells.group]))
    unknown = set(obs[cells.group][rows < 0].astype(str).unique()) - {UNASSIGNED}
    if unknown:  # unassigned cells (sampling.unassigned: keep) have no terms by design
        log.warning("%d cells have a %s not in the taxonomy, e.g. %s", (rows < 0).sum(),
                    cells.group, few(sorted(unknown)))  # fmt: skip
    for level in taxonomy.columns:
        if level == cells.group:  # no taxonomy: the group is its own level
            continue
        obs[level] = _per_cell(pd.Categorical(terms[level].to_numpy(object)), rows)
    # a group, not a quantity: scanpy then colours it by category, not on a colour bar,
    # and names its groups by text (rank_genes_groups joins them)
    obs[cells.group] = _text_categories(obs[cells.group])
    obs = _strings_as_categoricals(obs)
    _per_cell_as_text(obs, keep=(cells.group, *taxonomy.columns))
    return obs


def _per_cell_as_text(obs: pd.DataFrame, keep) -> None:
    """Text columns that name cells rather than group them (see ``PER_CELL_SHARE``) as
    plain text, in place, but the columns ``keep``; one with missing values stays a
    categorical."""
    for column in obs.columns:
        values = obs[column]
        if column in keep or not isinstance(values.dtype, pd.CategoricalDtype):
            continue
        if len(values.cat.categories) > PER_CELL_SHARE * len(values) and values.notna().all():
            obs[column] = values.astype(object)


def _text_categories(values: pd.Series) -> pd.Series:
    """A group key as categories of text, in the keys' own order (1, 2, 10 for numbers)."""
    categorical = values.astype("category")
    return categorical.cat.rename_categories(
        [key_text(key) for key in categorical.cat.categories]
    )


def key_text(key) -> str:
    """A group key as text: 7, 7.0 (a number column with gaps) and "7" alike are "7"."""
    if isinstance(key, (float, np.floating)) and float(key).is_integer():
        return str(int(key))
    return str(key)


def _obs_frame(table: pa.Table) -> pd.DataFrame:
    """Cell metadata as pandas: text as categoricals (built from Arrow, see
    ``_text_categorical``), other columns as Arrow converts them."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        text = pa.types.is_dictionary(column.type) or pa.types.is_string(column.type)
        columns[name] = _text_categorical(column) if text else column.to_pandas()
    return pd.DataFrame(columns)


def _text_categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """Text as ``astype("category")`` makes it (the distinct values, sorted; missing is no
    category), from an Arrow dictionary: no Python string per cell."""
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    array = column.unify_dictionaries().combine_chunks()
    codes = pc.fill_null(array.indices, -1).to_numpy().astype(np.int64)
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(array.dictionary) + 1)[1:])
    values = array.dictionary.take(used)
    order = pc.array_sort_indices(values).to_numpy()  # code point order, as Python sorts str
    lookup = np.full(len(array.dictionary) + 1, -1, dtype=np.int64)
    lookup[used[order] + 1] = np.arange(len(used))
    categories = pd.Index(values.take(order).to_numpy(zero_copy_only=False), dtype=object)
    return pd.Categorical.from_codes(lookup[codes + 1], categories)


def _per_cell(terms: pd.Categorical, rows: np.ndarray) -> pd.Categorical:
    """Each cell's term (``rows``: its row of ``terms``, -1 for none), with only the terms
    used as categories, as ``astype("category")`` of the values would make them."""
    codes = np.where(rows >= 0, terms.codes[rows], -1)
    return pd.Categorical.from_codes(codes, terms.categories).remove_unused_categories()


def atlas_umap(obs: pd.DataFrame, dataset: Dataset) -> dict:
    """``obsm`` with the atlas UMAP (the cell table's x, y) as ``X_umap``, if obs has it."""
    columns = list(dataset.cells.umap or [])
    if not columns:
        return {}
    if not all(c in obs.columns for c in columns):
        log.warning("no %s columns in the cell metadata: the result has no X_umap (%s)",
                    ", ".join(columns), dataset.fix("cells.umap"))  # fmt: skip
        return {}
    return {"X_umap": obs[columns].to_numpy(np.float64)}


def level_colors(obs: pd.DataFrame, taxonomy: TaxonomyTable,
                 group: str | None = None) -> dict[str, list[str]]:  # fmt: skip
    """``uns`` entries ``<level>_colors``: the atlas colour of each category, in order.

    A term (even "" or "NA") meets its colour as it is in obs; a term takes the colour of
    its first group, as in the report. Levels without colours get none (scanpy's palette).
    The group key (``group``) gets its term's colour at the finest level that has colours:
    scanpy paints more than 102 categories without colours of their own all grey.
    """
    uns = {}
    for level in taxonomy.columns:
        term_color = taxonomy.term_colors(level)
        if not term_color or level not in obs.columns:
            if level in taxonomy.levels:  # annotations without colours are the usual case
                log.warning("the taxonomy has no colours for %s: the result has no %s_colors",
                            level, level)  # fmt: skip
            continue
        categories = obs[level].cat.categories
        unknown = [term for term in categories if term not in term_color]
        if unknown:
            log.warning("%d %s term(s) have no colour in the taxonomy, e.g. %s: drawn in grey",
                        len(unknown), level, few(unknown))  # fmt: skip
        uns[f"{level}_colors"] = [term_color.get(t, MISSING_TERM_COLOR) for t in categories]
    if group in obs.columns and f"{group}_colors" not in uns:
        uns.update(_group_colors(obs[group], taxonomy, group))
    return uns


def _group_colors(keys: pd.Series, taxonomy: TaxonomyTable, group: str) -> dict:
    coloured = [level for level in taxonomy.levels if level in taxonomy.colors.columns]
    if not coloured:
        return {}
    colors = taxonomy.colors[coloured[-1]]  # the finest level's colour of each group key
    by_key = {key_text(k): c for k, c in colors.items() if isinstance(c, str) and c}
    return {
        f"{group}_colors": [by_key.get(k, MISSING_TERM_COLOR) for k in keys.cat.categories]
    }


def _aliases(values) -> pd.Index:
    """Cluster aliases as text (`key_text`), so int, float and string spellings of one alias
    match."""
    return pd.Index(pd.Series(values).map(key_text).to_numpy(object))


def _strings_as_categoricals(table: pd.DataFrame) -> pd.DataFrame:
    for column in table.columns:
        dtype = table[column].dtype
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            table[column] = table[column].astype(object).astype("category")
    return table


def build_var(var: pd.DataFrame, genes_csv, id_column: str = "gene_identifier") -> pd.DataFrame:
    """The subsets' genes (index, gene_symbol) with gene.csv's other columns joined."""
    genes = read_genes(genes_csv, id_column)
    extra = genes.drop(columns=[c for c in genes.columns if c in var.columns])
    unknown = var.index.difference(genes.index)
    if len(unknown):
        log.warning("%d genes of the matrices are not in %s, e.g. %s", len(unknown), genes_csv,
                    few(unknown))  # fmt: skip
    return var.join(extra, how="left")


@dataclass
class GenePanel:
    """The genes a result keeps (``output.genes``), in the matrices' order: ``columns`` are
    their positions in the matrices' var; ``new_index`` maps every matrix column to its
    column in the result (-1: dropped)."""

    columns: np.ndarray
    new_index: np.ndarray

    @classmethod
    def of(cls, var: pd.DataFrame, names, maybe_header: bool = False) -> GenePanel:
        """The genes ``names`` name, by ``var``'s index (gene ids) or its ``gene_symbol``
        (a symbol of several genes keeps them all); names of no gene are left out with one
        warning line. ``maybe_header``: the first name is a file's header if it names no
        gene."""
        names = [str(n).strip() for n in names if str(n).strip()]
        ids = pd.Index(var.index.astype(str))
        symbols = pd.Index(var["gene_symbol"].astype(str)) if "gene_symbol" in var else ids[:0]
        found = [np.flatnonzero((ids == n) | (symbols == n)) for n in names]
        unknown = [n for n, hits in zip(names, found, strict=True) if not len(hits)]
        if maybe_header and names and unknown[:1] == names[:1]:
            log.info("output.genes: its first line %r names no gene: taken as a header", names[0])
            names, unknown = names[1:], unknown[1:]
        if not names or len(unknown) == len(names):
            raise AbcError(
                f"none of the {len(names)} names of output.genes is a gene of the matrices "
                f"(e.g. {few(unknown[:3], 3) or 'none given'}): give gene_identifier values "
                f"(e.g. {ids[0]}) or gene_symbol values of the dataset's gene table"
            )
        if unknown:
            log.warning("output.genes: %d of its %d names are no gene of the matrices "
                        "(gene_identifier or gene_symbol), e.g. %s: left out", len(unknown),
                        len(names), few(unknown[:3], 3))  # fmt: skip
        columns = np.unique(np.concatenate(found))
        new_index = np.full(len(var), -1, dtype=np.int64)
        new_index[columns] = np.arange(len(columns))
        return cls(columns, new_index)


def _panel_var(var: pd.DataFrame, panel: GenePanel) -> pd.DataFrame:
    """The panel's rows of var. A text column left with no value (gene.csv's ``comment``
    of genes without one) becomes an empty categorical: anndata writes no all-missing
    object column."""
    var = var.iloc[panel.columns].copy()
    for column in var.columns:
        if pd.api.types.is_object_dtype(var[column].dtype) and var[column].isna().all():
            var[column] = pd.Categorical(var[column])
    return var


def read_gene_names(setting) -> tuple[list[str], bool]:
    """``output.genes``: a list of names, or a file of one name a line (its first line may
    be a header). Returns the names and whether they came from a file."""
    if isinstance(setting, (str, os.PathLike)):
        with unreadable(f"output.genes {setting}", "fix the path or give a list of genes"):
            lines = open(setting, encoding="utf-8-sig").read().splitlines()  # noqa: SIM115
        return [line.split(",")[0] for line in lines], True
    return [str(name) for name in setting], False


def concat_subsets(
    paths: list[str],
    out_path: str | os.PathLike,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    uns: dict,
    block_nnz: int = DEFAULT_BLOCK_NNZ,
    obsm: dict | None = None,
    panel: GenePanel | None = None,
) -> ConcatStats:
    """Write the subsets' rows, in order, under ``obs``/``var``/``uns``/``obsm`` to ``out_path``.

    Values keep their dtype (the widest of the subsets'); memory is one block of
    ``block_nnz`` non-zeros plus one subset's ``indptr``, whatever the output size. With a
    ``panel`` only its genes are kept, selected while the blocks are copied.
    """
    if not paths:
        raise AbcError("no subset files to concatenate: the sample selected no cells")
    parts = [_subset_x(path) for path in paths]
    n_rows = sum(p.n_rows for p in parts)
    if n_rows != len(obs):
        raise AbcError(
            f"the subsets hold {n_rows} cells but obs has {len(obs)}: delete data/subsets and rerun"
        )
    wrong_genes = [p for p in parts if p.n_cols != len(var)]
    if wrong_genes:
        raise AbcError(
            f"{os.path.basename(wrong_genes[0].path)} has {wrong_genes[0].n_cols} genes but "
            f"var has {len(var)}: delete data/subsets and rerun"
        )
    nnz = sum(p.nnz for p in parts)  # a bound with a panel
    dtype = np.result_type(*(p.dtype for p in parts))
    indices_dtype = np.result_type(*(p.indices_dtype for p in parts))
    if panel is not None:
        var = _panel_var(var, panel)
    growable = panel is not None
    with (
        atomic_path(out_path, suffix=".h5ad") as tmp,
        csr_h5ad_writer(tmp, obs, var, uns, nnz, dtype, indices_dtype, obsm,
                        obs_as_given=True, growable=growable) as writer,  # fmt: skip
    ):
        for part in parts:
            _copy_rows(part.path, writer, block_nnz, panel)
        nnz = writer.nnz
    return ConcatStats(rows=n_rows, nnz=nnz, files=len(parts))


def _copy_rows(path: str, writer, block_nnz: int, panel: GenePanel | None = None) -> None:
    """Append all rows of one subset file to ``writer``, ``block_nnz`` values at a time
    (only the ``panel``'s genes, if given: each row keeps its values in those columns)."""
    with unreadable(
        f"subset {os.path.basename(path)}"
    ):  # read errors only: write errors keep their own message
        h5file = h5py.File(path, "r")
    with h5file:
        group = h5file["X"]
        data, indices = group["data"], group["indices"]
        first = writer.nnz
        size = len(data)
        with unreadable(f"subset {os.path.basename(path)}"):
            indptr = group["indptr"][:].astype(np.int64)
        if len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != size:
            raise AbcError(f"X of {os.path.basename(path)} is inconsistent: delete it and rerun")
        ends = indptr[1:].copy()  # each row's end in the output once filtered (0 stays 0)
        data_buf = np.empty(min(block_nnz, size), data.dtype)
        indices_buf = np.empty(min(block_nnz, size), indices.dtype)
        kept = 0  # values of this file written so far
        for start in range(0, size, block_nnz):
            stop = min(start + block_nnz, size)
            n = stop - start
            with unreadable(f"subset {os.path.basename(path)}"):
                data.read_direct(data_buf, np.s_[start:stop], np.s_[0:n])
                indices.read_direct(indices_buf, np.s_[start:stop], np.s_[0:n])
            if panel is None:
                writer.append_values(data_buf[:n], indices_buf[:n])
                continue
            column = panel.new_index[indices_buf[:n]]
            keep = column >= 0
            writer.append_values(data_buf[:n][keep], column[keep])
            # rows ending in this block: the values kept before their end
            inside = slice(*np.searchsorted(indptr[1:], [start, stop], side="right"))
            before = np.r_[0, np.cumsum(keep)]
            ends[inside] = kept + before[indptr[1:][inside] - start]
            kept += int(before[-1])
        writer.append_row_ends(ends + first)


def concat_release(
    paths: list[str],
    out_path: str | os.PathLike,
    *,
    cells_csv,
    sample_rows,
    taxonomy,
    genes,
    provenance: dict,
    colors=None,
    dataset: Dataset | None = None,
    population=None,
    block_nnz: int = DEFAULT_BLOCK_NNZ,
    gene_panel=None,
) -> ConcatStats:
    """The final h5ad: subsets' X, full cell metadata + taxonomy, genes, provenance, the
    atlas UMAP and colours. ``sample_rows`` is the sample's rows of the cell table (written
    by sampling), ``taxonomy`` the taxonomy's file(s) (see ``taxonomy``), ``colors`` a
    colour table of its own where there is one, ``dataset`` the profile (default: the
    config's), ``population`` the sample's population record (sampling writes it),
    ``gene_panel`` the genes to keep (``output.genes``: names, or a file of them)."""
    dataset = dataset or load_dataset()
    paths = [str(p) for p in paths]
    labels = subset_labels(paths)
    # the sample: its labels, and its group keys (the one level of a dataset without taxonomy)
    wanted = (CELL_LABEL, dataset.cells.group)
    sample = pd.read_csv(
        cells_csv, usecols=lambda c: c in wanted, dtype=str, keep_default_na=False
    )
    check_cells_match(labels, pd.Index(sample[CELL_LABEL]), cells_csv)
    var = common_var(paths)
    if genes is not None:  # else the matrices' own genes (their var) alone
        var = build_var(var, genes, dataset.genes.id)
    panel = GenePanel.of(var, *read_gene_names(gene_panel)) if gene_panel is not None else None
    files = [taxonomy] if isinstance(taxonomy, (str, os.PathLike)) else list(taxonomy or [])
    files += [colors] if colors else []
    groups = None if files else sample[dataset.cells.group]
    table = read_taxonomy(files, dataset, groups, annotations=True)
    obs = build_obs(labels, sample_rows, table, dataset)
    provenance = dict(provenance)
    if population is not None:
        provenance["population"] = json.loads(Path(population).read_text())
    uns = {UNS_KEY: provenance, **level_colors(obs, table, dataset.cells.group)}
    return concat_subsets(
        paths, out_path, obs, var, uns, block_nnz=block_nnz, obsm=atlas_umap(obs, dataset),
        panel=panel,
    )  # fmt: skip
