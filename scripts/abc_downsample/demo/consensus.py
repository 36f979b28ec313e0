"""Synthetic Consensus-WMB-Macosko-10X and Consensus-WMB-AIBS-10X (release 20251031): two
halves of one taxonomy, ``Consensus-WMB-integrated-taxonomy``, always written together.

Traps reproduced:
- Macosko labels are ``<library_label>_<barcode>`` and its ``barcoded_cell_sample_label``
  is empty (NaN); its gene table (``gene_identifier, gene_symbol`` only) is smaller than
  WMB's and not a subset of it; its ten regional matrices hold extra nuclei;
- AIBS has metadata only: its cells name the WMB-10Xv2/v3 matrices of the synthetic WMB
  release and read ``WMB-10X/gene``; most are WMB-10X cells, a few are not (they are in
  the WMB matrices but not in WMB-10X's cell table), and some WMB-10X cells are not AIBS's;
- the taxonomy lists ``neurotransmitter`` first (order 0), then neighborhood, class,
  subclass, supertype, cluster; membership is ``cell_label, cluster_alias`` only and leaves
  a few cells of each half out; cluster labels are strings, aliases integers unrelated to
  them; supertype and cluster colours are not unique per term; per-neighborhood
  embeddings sit beside the whole one.
"""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from abc_downsample.demo.common import random_barcodes
from abc_downsample.demo.genes import macosko_genes
from abc_downsample.demo.newer_common import (
    barcodes_repeat,
    dataset_info,
    dates,
    example_expression,
    groups,
    matrix_keys,
    population,
    rows_for,
    value_sets,
    write_matrices,
    write_tables,
)
from abc_downsample.demo.newer_taxonomy import Level, TaxonomyShape, integer_aliases
from abc_downsample.demo.wmb import MATRICES as WMB_MATRICES

RELEASE = "20251031"
MACOSKO = "Consensus-WMB-Macosko-10X"
AIBS = "Consensus-WMB-AIBS-10X"
MACOSKO_METADATA = "metadata/Consensus-WMB-Macosko-10X/20251031"
AIBS_METADATA = "metadata/Consensus-WMB-AIBS-10X/20251031"
MATRIX_DIR = "expression_matrices/Consensus-WMB-Macosko-10X/20251031"
COLUMNS = ["cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
           "dataset_label", "feature_matrix_label"]  # fmt: skip
AIBS_SHARE = 3_915_432 / 4_042_976  # of WMB-10X's cells (those of WMB-10XMulti never)

# region -> share of Macosko's nuclei
REGIONS = {"CB": 1.0, "HPF": 1.0, "HY": 0.8, "Isocortex": 1.6, "MB": 0.9, "MY-Pons-BS": 0.9,
           "OLF": 0.7, "PAL": 0.5, "STR": 1.0, "TH": 0.8}  # fmt: skip

TAXONOMY = TaxonomyShape(
    directory="metadata/Consensus-WMB-integrated-taxonomy/20251031",
    date="20251031",
    levels=(Level("neighborhood", "NBHD", 9), Level("class", "CLAS", 43),
            Level("subclass", "SUBC", 414), Level("supertype", "SUPT", 1386),
            Level("cluster", "CLUS", 6721)),
    annotation=Level("neurotransmitter", "NEUR", 22),
    membership_label=False,
    shared_colors=True,
)  # fmt: skip

# neighborhood -> (class stems, neurotransmitters of its clusters)
NEIGHBORHOODS = {
    "HY-EA-Glut-GABA": (("HY Glut", "HY GABA"), ("Glut", "GABA", "Glut-GABA")),
    "MB-GABA": (("MB GABA",), ("GABA",)),
    "MB-Glut-Dopa-Sero": (("MB Dopa", "MB Glut"), ("Dopa", "Glut", "Sero")),
    "NN-IMN": (("Astro-Epen", "OPC-Oligo", "Vascular"), ("NN",)),
    "P-MY-CB-GABA": (("P-MY GABA",), ("GABA", "GABA-Glyc")),
    "P-MY-CB-Glut": (("CB Glut",), ("Glut",)),
    "Pallium-Glut": (("L1-ET Glut", "NP-CT-L6b Glut"), ("Glut",)),
    "Subpallium-GABA": (("CNU-LGE GABA", "CTX-CGE GABA"), ("GABA", "Chol")),
    "TH-EPI-Glut": (("TH Glut",), ("Glut",)),
}


def write(root: Path, rng: np.random.Generator, ctx) -> dict[str, dict]:
    """Write both halves and their taxonomy; return {dataset: what tests need}."""
    macosko, libraries = _macosko_cells(rng, ctx.n_cells)
    listed = macosko[macosko["_in_metadata"]]
    aibs = _aibs_cells(rng, ctx)
    taxonomy = _taxonomy(rng, listed, aibs)
    shared = write_tables(root, TAXONOMY.directory, taxonomy)
    genes = macosko_genes(rng, ctx.wmb_genes)
    tables = _macosko_tables(rng, listed, libraries, genes)
    macosko_files = write_tables(root, MACOSKO_METADATA, tables)
    obs = ["cell_barcode", "library_label"]
    matrices = write_matrices(root, rng, MATRIX_DIR, macosko, obs, genes)
    aibs_files = write_tables(root, AIBS_METADATA, _aibs_tables(rng, aibs, ctx))
    assigned = set(taxonomy["cell_to_cluster_membership"]["cell_label"])
    aibs_matrices = {m: ctx.wmb_matrices[m] for m in dict.fromkeys(aibs["feature_matrix_label"])}
    return {
        MACOSKO: dataset_info(RELEASE, MACOSKO_METADATA, f"{MACOSKO_METADATA}/gene.csv",
                              TAXONOMY.directory, matrices, listed, assigned,
                              [*macosko_files, *shared, *matrix_keys(matrices)]),
        AIBS: {
            **dataset_info(RELEASE, AIBS_METADATA, f"{ctx.wmb_metadata}/gene.csv",
                           TAXONOMY.directory, aibs_matrices, aibs, assigned,
                           [*aibs_files, *shared]),
            "n_not_in_wmb": int((~aibs["cell_label"].isin(ctx.wmb_cells["cell_label"])).sum()),
        },
    }  # fmt: skip


# ---- Macosko --------------------------------------------------------------------------


def _macosko_libraries(rng: np.random.Generator) -> pd.DataFrame:
    """Three libraries per region, named like ``pBICCNsMMrBSL1aiM007d190529``."""
    regions = np.repeat(list(REGIONS), 3)
    n = len(regions)
    numbers, days = rng.integers(1, 200, n), dates(rng, n, (19, 20))
    return pd.DataFrame(
        {
            "library_label": [f"pBICCNsMMr{r.replace('-', '')}L{k % 3 + 1}aiM{m:03d}d{d}"
                              for k, (r, m, d) in enumerate(zip(regions, numbers, days,
                                                                strict=True))],
            "region": regions,
            "donor_label": [f"C57BL6J-M{int(m) % 7 + 1:02d}" for m in numbers],
        }
    )  # fmt: skip


def _macosko_cells(rng: np.random.Generator, n_cells: int):
    libraries = _macosko_libraries(rng)
    shares = {f"Macosko-10X-{r}": s for r, s in REGIONS.items()}

    def make(rng, matrix_of):
        regions = np.array([m.removeprefix("Macosko-10X-") for m in matrix_of])
        index = rows_for(rng, regions, libraries, "region")
        cells = pd.DataFrame(
            {
                "cell_barcode": random_barcodes(rng, len(matrix_of)),
                "barcoded_cell_sample_label": np.nan,  # no barcoded sample at all
                "library_label": libraries["library_label"].to_numpy()[index],
                "dataset_label": MACOSKO,
                "feature_matrix_label": matrix_of,
            }
        )
        barcodes_repeat(cells, "library_label")
        cells.insert(0, "cell_label", cells["library_label"] + "_" + cells["cell_barcode"])
        return cells

    return population(rng, shares, n_cells, make), libraries


def _donor_tables(rng, libraries: pd.DataFrame, origin: str, **more) -> dict[str, pd.DataFrame]:
    """A half's ``donor`` table (the donors of its ``libraries``, from ``origin``, with
    ``more`` columns) and its ``value_sets``."""
    donors = sorted(set(libraries["donor_label"]))
    return {
        "donor": pd.DataFrame({"donor_label": donors,
                               "donor_sex": rng.choice(["F", "M"], len(donors)),
                               "origin_dataset": origin, **more}),
        "value_sets": value_sets({"origin_dataset": ("donor", ["WMB-AIBS", "WMB-Macosko"])}),
    }  # fmt: skip


def _macosko_tables(rng, listed, libraries, genes) -> dict[str, pd.DataFrame]:
    return {
        "cell_metadata": listed[COLUMNS],
        "gene": genes,
        "library": pd.DataFrame({
            "library_label": libraries["library_label"],
            "region_of_interest_acronym": libraries["region"],
            "anatomical_division_label": libraries["region"].str.split("-").str[0],
            "donor_label": libraries["donor_label"],
        }),
        **_donor_tables(rng, libraries, "WMB-Macosko"),
        "views/example_gene_expression": example_expression(rng, listed["cell_label"],
                                                            genes["gene_symbol"]),
    }  # fmt: skip


# ---- AIBS -----------------------------------------------------------------------------


def _aibs_cells(rng: np.random.Generator, ctx) -> pd.DataFrame:
    """Most WMB-10Xv2/v3 cells of WMB-10X, and a few that only the WMB matrices hold."""
    wmb = ctx.wmb_cells[ctx.wmb_cells["dataset_label"] != "WMB-10XMulti"]
    kept = wmb[rng.random(len(wmb)) < AIBS_SHARE][COLUMNS]
    unlisted = [_unlisted(rng, ctx, label, info) for label, info in ctx.wmb_matrices.items()
                if info["dataset"] != "WMB-10XMulti"]  # fmt: skip
    cells = pd.concat([kept, *unlisted], ignore_index=True)
    return cells.iloc[rng.permutation(len(cells))].reset_index(drop=True)


def _unlisted(rng, ctx, label: str, info: dict) -> pd.DataFrame:
    """Two cells of a WMB matrix that WMB-10X's cell table does not list."""
    obs = ad.read_h5ad(Path(ctx.root, info["raw"]), backed="r").obs
    extra = obs[~obs.index.isin(ctx.wmb_cells["cell_label"])].iloc[:2]
    return pd.DataFrame(
        {
            "cell_label": extra.index.to_numpy(),
            "cell_barcode": extra["cell_barcode"].to_numpy(),
            "barcoded_cell_sample_label": [c.split("-", 1)[1] for c in extra.index],
            "library_label": extra["library_label"].to_numpy(),
            "dataset_label": info["dataset"],
            "feature_matrix_label": label,
        }
    )


def _aibs_tables(rng, cells: pd.DataFrame, ctx) -> dict[str, pd.DataFrame]:
    wmb = ctx.wmb_cells.drop_duplicates("library_label").set_index("library_label")
    libraries = wmb.loc[sorted(set(cells["library_label"]))]
    division = {spec.label: spec.division for spec in WMB_MATRICES}
    return {
        "cell_metadata": cells[COLUMNS],
        "library": pd.DataFrame({
            "library_label": libraries.index,
            "library_method": libraries["library_method"].to_numpy(),
            "alignment_id": rng.integers(1_100_000_000, 1_300_000_000, len(libraries)),
            "region_of_interest_acronym": libraries["region_of_interest_acronym"].to_numpy(),
            "anatomical_division_label": libraries["feature_matrix_label"].map(division)
            .to_numpy(),
            "donor_label": libraries["donor_label"].to_numpy(),
        }),
        **_donor_tables(rng, libraries, "WMB-AIBS", donor_age="P56"),
        "views/example_gene_expression": example_expression(rng, cells["cell_label"],
                                                            ctx.wmb_genes["gene_symbol"]),
    }  # fmt: skip


# ---- the shared taxonomy --------------------------------------------------------------


def _taxonomy(rng, macosko: pd.DataFrame, aibs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The taxonomy's tables over both halves' cells: one cell of each surely without a
    cluster, about 1 % more at random."""
    left_out = [macosko["cell_label"].iloc[0], aibs["cell_label"].iloc[0]]
    listed = pd.concat([macosko, aibs], ignore_index=True)
    candidates = listed[~listed["cell_label"].isin(left_out)].reset_index(drop=True)
    clusters, taxonomy = groups(rng, TAXONOMY, candidates, 0.99, _parents(rng), _leaf_name,
                                integer_aliases, _transmitters)  # fmt: skip
    taxonomy.update(_neighborhood_embeddings(rng, taxonomy, clusters))
    return taxonomy


def _parents(rng: np.random.Generator) -> list[tuple[str, str, str, str]]:
    """(neighborhood, class, subclass, supertype) of every supertype, numbered like
    ``001 L1-ET Glut``: one or two subclasses per class, supertypes per subclass."""
    parents, n_class, n_sub, n_super = [], 0, 0, 0
    for neighborhood, (stems, _) in NEIGHBORHOODS.items():
        for stem in stems:
            n_class += 1
            for k in range(int(rng.integers(1, 3))):
                n_sub += 1
                subclass = f"{n_sub:03d} {stem}-{k + 1}"
                for j in range(int(rng.integers(1, 3))):
                    n_super += 1
                    supertype = f"{n_super:04d} {stem}-{k + 1}_{j + 1}"
                    parents.append((neighborhood, f"{n_class:03d} {stem}", subclass, supertype))
    return parents


def _leaf_name(parent: tuple[str, ...], k: int) -> str:
    return f"{parent[-1].split(' ', 1)[1]}_{k}"


def _transmitters(rng: np.random.Generator, clusters: pd.DataFrame) -> list[str]:
    """A neurotransmitter per cluster, among those of its neighborhood (``NN`` for
    non-neuronal ones)."""
    return [str(rng.choice(NEIGHBORHOODS[n][1])) for n in clusters["neighborhood"]]


def _neighborhood_embeddings(rng, taxonomy: dict, clusters: pd.DataFrame) -> dict:
    """``<neighborhood>_cell_2d_embedding_coordinates``: each neighborhood's own 2-D
    embedding of its cells."""
    membership = taxonomy["cell_to_cluster_membership"]
    neighborhood_of = dict(zip(clusters["cluster_alias"], clusters["neighborhood"], strict=True))
    of_cell = membership["cluster_alias"].map(neighborhood_of)
    tables = {}
    for neighborhood in sorted(set(of_cell)):
        labels = membership.loc[of_cell == neighborhood, "cell_label"].to_numpy()
        tables[f"{neighborhood}_cell_2d_embedding_coordinates"] = pd.DataFrame({
            "cell_label": labels,
            "x": np.round(rng.normal(0, 5, len(labels)), 6),
            "y": np.round(rng.normal(0, 5, len(labels)), 6),
        })  # fmt: skip
    return tables
