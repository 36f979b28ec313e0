"""An independent reading of the newer datasets of a synthetic release, for end-to-end tests.

Only the bucket's files are read, with pandas, anndata and the manifest's JSON, the way the
Allen Institute's notebooks read them (``abc_datasets_newer.md``): the cell table inner-joined
with ``cell_to_cluster_membership``, the long taxonomy tables pivoted per cluster, colours
from ``cluster_annotation_term``, x/y from ``cell_2d_embedding_coordinates``. Which directory
holds which table is written down here from the facts, not taken from the project's code;
the writer is not imported either. Every CSV is read as strings with no NA values, so
``'LSX '`` and empty cells stay what they are.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import pandas as pd


@dataclass(frozen=True)
class Where:
    """Where a dataset's tables are: manifest directories and table names."""

    metadata: str  # the directory of cell_metadata
    taxonomy: str
    genes: tuple[str, str]  # (directory, table): some datasets read another's
    levels: tuple[str, ...]  # top first, as the term sets name them
    annotations: tuple[str, ...] = ()  # term sets outside the hierarchy
    # (table, term column, colour column): per-cluster annotations outside the term sets
    cluster_tables: tuple[tuple[str, str, str], ...] = ()


CONSENSUS_LEVELS = ("neighborhood", "class", "subclass", "supertype", "cluster")
DATASETS = {
    "SEA-AD-Multiregion-10X": Where(
        "SEA-AD-Multiregion-10X", "SEA-AD-Multiregion-taxonomy",
        ("SEA-AD-Multiregion-10X", "gene"), ("Class", "Subclass", "Supertype"),
    ),
    "SEA-AD-CaH-10X": Where(
        "SEA-AD-CaH-10X", "SEA-AD-CaH-taxonomy", ("SEA-AD-CaH-10X", "gene"),
        ("Neighborhood", "Subclass", "Supertype"),
    ),
    "Consensus-WMB-Macosko-10X": Where(
        "Consensus-WMB-Macosko-10X", "Consensus-WMB-integrated-taxonomy",
        ("Consensus-WMB-Macosko-10X", "gene"), CONSENSUS_LEVELS, ("neurotransmitter",),
    ),
    "Consensus-WMB-AIBS-10X": Where(
        "Consensus-WMB-AIBS-10X", "Consensus-WMB-integrated-taxonomy", ("WMB-10X", "gene"),
        CONSENSUS_LEVELS, ("neurotransmitter",),
    ),
    "Developing-Mouse-Vis-Cortex-10X": Where(
        "Developing-Mouse-Vis-Cortex-10X", "Developing-Mouse-Vis-Cortex-taxonomy",
        ("Developing-Mouse-Vis-Cortex-10X", "gene"), ("class", "subclass", "cluster", "subcluster"),
    ),
    # its level names were not seen: these are the synthetic release's (HMBA-BG's)
    "HMBA-10xMultiome-Subcortex": Where(
        "HMBA-10xMultiome-Subcortex", "HMBA-Subcortex-taxonomy",
        ("HMBA-10xMultiome-BG", "marmoset_gene"), CONSENSUS_LEVELS[:3] + ("group", "cluster"),
        cluster_tables=(("cluster_to_neurotransmitter", "Group_NT", "Group_NT_color"),),
    ),
}  # fmt: skip


@dataclass
class Truth:
    """What a correct downsample of ``dataset`` is checked against."""

    dataset: str
    release: str
    cells: pd.DataFrame  # the whole cell table, indexed by cell_label
    assigned: pd.DataFrame  # cells inner-joined with the membership: adds cluster_alias
    unassigned: pd.Index  # cell labels with no membership row
    terms: pd.DataFrame  # per cluster_alias: a column per term set (by order), then annotations
    levels: list[str]  # top first
    annotations: list[str]  # term sets outside the hierarchy and cluster annotation tables
    colors: dict[str, dict[str, str]]  # term set (or annotation) -> term -> colour
    xy: pd.DataFrame  # x, y (float) per cell_label
    genes: pd.DataFrame  # the gene table the dataset's matrices use
    cluster_sizes: pd.Series  # cluster.csv's number_of_cells per cluster_alias (int)
    matrices: dict[str, dict[str, Path]] = field(default_factory=dict)  # label -> variant -> path

    def expected_obs(self) -> pd.DataFrame:
        """Per assigned cell: its cluster_alias and its term at every level and annotation."""
        terms = self.terms.loc[self.assigned["cluster_alias"], self.levels + self.annotations]
        terms.index = self.assigned.index
        return pd.concat([self.assigned[["cluster_alias"]], terms], axis=1)


def manifest(root, release: str) -> dict:
    return json.loads(Path(root, "releases", release, "manifest.json").read_text())


def table_key(listing: dict, directory: str, name: str) -> str:
    """The bucket key of a metadata table in a manifest's ``file_listing``."""
    return listing[directory]["metadata"][name]["files"]["csv"]["relative_path"]


def read_csv(root, key: str) -> pd.DataFrame:
    return pd.read_csv(Path(root, key), dtype=str, keep_default_na=False)


def read_truth(root, dataset: str, release: str) -> Truth:
    """Read ``dataset`` as release ``release`` of the bucket mirror at ``root`` lists it."""
    where, listing = DATASETS[dataset], manifest(root, release)["file_listing"]

    def table(directory, name):
        return read_csv(root, table_key(listing, directory, name))

    cells = table(where.metadata, "cell_metadata").set_index("cell_label")
    membership = table(where.taxonomy, "cell_to_cluster_membership").set_index("cell_label")
    assigned = cells.join(membership[["cluster_alias"]], how="inner")
    terms, colors, order = _terms(table, where)
    annotations = [name for name in order if name not in where.levels]
    xy = table(where.taxonomy, "cell_2d_embedding_coordinates").set_index("cell_label")
    sizes = table(where.taxonomy, "cluster").set_index("cluster_alias")["number_of_cells"]
    return Truth(
        dataset=dataset,
        release=release,
        cells=cells,
        assigned=assigned,
        unassigned=cells.index.difference(membership.index),
        terms=terms,
        levels=list(where.levels),
        annotations=annotations,
        colors=colors,
        xy=xy[["x", "y"]].astype(float),
        genes=table(*where.genes),
        cluster_sizes=sizes.astype(int),
        matrices=_matrices(root, listing, cells),
    )


def _terms(table, where: Where):
    """The long tables pivoted: (terms per cluster_alias, colours per term, column order)."""
    sets = table(where.taxonomy, "cluster_annotation_term_set")
    order = list(sets.assign(order=sets["order"].astype(int)).sort_values("order")["name"])
    long = table(where.taxonomy, "cluster_to_cluster_annotation_membership")
    terms = long.pivot(index="cluster_alias", columns="cluster_annotation_term_set_name",
                       values="cluster_annotation_term_name")[order]  # fmt: skip
    term_table = table(where.taxonomy, "cluster_annotation_term")
    colors = {
        name: dict(zip(group["name"], group["color_hex_triplet"], strict=True))
        for name, group in term_table.groupby("cluster_annotation_term_set_name")
    }
    for name, term, color in where.cluster_tables:
        extra = table(where.taxonomy, name).set_index("cluster_alias")
        terms[term] = extra[term].reindex(terms.index)
        colors[term] = dict(zip(extra[term], extra[color], strict=True))
        order.append(term)
    return terms, colors, order


def _matrices(root, listing: dict, cells: pd.DataFrame) -> dict[str, dict[str, Path]]:
    """The raw and log2 h5ad of every matrix the cells name (dataset_label's listing)."""
    pairs = cells[["dataset_label", "feature_matrix_label"]].drop_duplicates()
    matrices = {}
    for directory, label in pairs.itertuples(index=False):
        entry = listing[directory]["expression_matrices"][label]
        matrices[label] = {
            variant: Path(root, entry[variant]["files"]["h5ad"]["relative_path"])
            for variant in ("raw", "log2")
        }
    return matrices


def source_rows(truth: Truth, labels, variant: str = "raw") -> ad.AnnData:
    """The rows of ``labels`` (cell labels of the cell table) read from the dataset's
    matrices, in the order given."""
    labels = list(labels)
    matrix_of = truth.cells.loc[labels, "feature_matrix_label"]
    parts = []
    for label in dict.fromkeys(matrix_of):
        source = ad.read_h5ad(truth.matrices[label][variant])
        parts.append(source[list(matrix_of.index[matrix_of == label])])
    return ad.concat(parts, merge="same")[labels]
