"""The synthetic WMB-10X: its cell, gene and taxonomy tables and its matrices (see
``release`` for the traps they reproduce)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.dataset.profile import load_dataset
from abc_downsample.demo.common import (
    cluster_sizes,
    gene_var,
    long_taxonomy_tables,
    random_barcodes,
    random_colors,
    random_counts,
    wells,
    write_raw_and_log2,
)

CELL_METADATA_DIR = "metadata/WMB-10X/20241115"


TAXONOMY_DIR = "metadata/WMB-taxonomy/20231215"


OTHER_DIR = "metadata/Zhuang-ABCA-1/20231215"


# the WMB-10X profile's term sets: annotations (neurotransmitter), then levels top first
TAXONOMY_LEVELS = load_dataset("WMB-10X").taxonomy.columns


@dataclass(frozen=True)
class MatrixSpec:
    dataset: str  # dataset_label, the manifest directory
    label: str  # feature_matrix_label, the manifest name
    version: str  # directory version
    storage: str  # "contiguous" or "chunked" (gzip)
    share: float  # fraction of the metadata cells
    regions: tuple[str, ...]  # region_of_interest_acronym values
    division: str  # anatomical_division_label in the h5ad obs

    @property
    def library_method(self) -> str:
        return {"WMB-10Xv2": "10Xv2", "WMB-10Xv3": "10Xv3"}.get(self.dataset, "10xRSeq_Mult")

    def relative_path(self, variant: str) -> str:
        return f"expression_matrices/{self.dataset}/{self.version}/{self.label}-{variant}.h5ad"


MATRICES = (
    MatrixSpec("WMB-10Xv2", "WMB-10Xv2-HPF", "20230630", "contiguous", 0.20, ("HPF", "RHP"), "HPF"),
    # A label with a hyphen in its region part, like the real Isocortex-1..4 files.
    MatrixSpec(
        "WMB-10Xv2",
        "WMB-10Xv2-Isocortex-1",
        "20230630",
        "contiguous",
        0.12,
        ("MOp", "SSp"),
        "Isocortex",
    ),
    MatrixSpec("WMB-10Xv2", "WMB-10Xv2-TH", "20230630", "contiguous", 0.17, ("TH",), "TH"),
    MatrixSpec("WMB-10Xv3", "WMB-10Xv3-HPF", "20230630", "chunked", 0.20, ("HPF", "RHP"), "HPF"),
    MatrixSpec("WMB-10Xv3", "WMB-10Xv3-MB", "20230630", "chunked", 0.27, ("MB", "MB-PONS"), "MB"),
    MatrixSpec("WMB-10XMulti", "WMB-10XMulti", "20230830", "contiguous", 0.04, ("TH", "MB"), "TH"),
)


# class -> (neurotransmitter, subclasses); real names, a much smaller tree.
TAXONOMY_TREE = (
    ("01 IT-ET Glut", "Glut", ("001 CLA-EPd-CTX Car3 Glut", "004 L6 IT CTX Glut")),
    ("06 CTX-CGE GABA", "GABA", ("046 Vip Gaba", "049 Lamp5 Gaba", "052 Pvalb Gaba")),
    ("18 TH Glut", "Glut", ("151 TH Prkcd Grin2c Glut", "154 PF Fzd5 Glut")),
    ("20 MB GABA", "GABA-Glyc", ("197 SNr Six3 Gaba",)),
    ("30 Astro-Epen", "NA", ("319 Astro-TE NN", "321 Astroependymal NN")),
    ("33 Vascular", "NA", ("330 VLMC NN", "333 Endo NN")),
)


SUPERTYPES_PER_SUBCLASS = 2


def cluster_taxonomy(rng: np.random.Generator, n_cells: int) -> pd.DataFrame:
    """One row per cluster: the nested class > subclass > supertype > cluster names."""
    sizes = cluster_sizes(rng, n_cells)
    supertypes = []  # (neurotransmitter, class, subclass, supertype base name, number)
    for class_name, transmitter, subclasses in TAXONOMY_TREE:
        for subclass in subclasses:
            base = subclass.split(" ", 1)[1]
            for k in range(1, SUPERTYPES_PER_SUBCLASS + 1):
                supertypes.append((transmitter, class_name, subclass, f"{base}_{k}"))
    # Each supertype gets at least one cluster; the rest land at random (seeded).
    owner = np.concatenate(
        [np.arange(len(supertypes)), rng.integers(0, len(supertypes), len(sizes))]
    )[: len(sizes)]
    owner = np.sort(owner)
    rows = []
    for number, (st_index, size) in enumerate(zip(owner, rng.permutation(sizes), strict=True)):
        transmitter, class_name, subclass, st_base = supertypes[st_index]
        rows.append(
            {
                "neurotransmitter": transmitter,
                "class": class_name,
                "subclass": subclass,
                "supertype": f"{st_index + 1:04d} {st_base}",
                "cluster": f"{number + 1:04d} {st_base}",
                "n_cells": int(size),
            }
        )
    table = pd.DataFrame(rows)
    # Aliases are not the cluster numbers in the real taxonomy either.
    table.insert(0, "cluster_alias", rng.permutation(len(table)) + 1)
    return table


def taxonomy_tables(rng: np.random.Generator, taxonomy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    by_alias = taxonomy.sort_values("cluster_alias")
    pivoted = by_alias[["cluster_alias", *TAXONOMY_LEVELS]]
    colors = by_alias[["cluster_alias"]].copy()
    for level in TAXONOMY_LEVELS:
        hexes = random_colors(rng, sorted(by_alias[level].unique()))
        colors[f"{level}_color"] = by_alias[level].map(hexes)
    clusters = pd.DataFrame(
        {
            "label": [f"CS20230722_CLUS_{int(n[:4]):04d}" for n in by_alias["cluster"]],
            "cluster_alias": by_alias["cluster_alias"],
            "number_of_cells": by_alias["n_cells"],
        }
    )
    return {
        "views/cluster_to_cluster_annotation_membership_pivoted.csv": pivoted,
        "views/cluster_to_cluster_annotation_membership_color.csv": colors,
        "cluster.csv": clusters,
        **long_taxonomy_tables(
            by_alias.rename(columns={"n_cells": "number_of_cells"}),
            colors.set_index("cluster_alias"),
            list(TAXONOMY_LEVELS[1:]) + [TAXONOMY_LEVELS[0]],
            "CCN20230722",
        ),
    }


def genes_table(rng: np.random.Generator, n_genes: int) -> pd.DataFrame:
    ids = np.sort(rng.choice(99_000, size=n_genes, replace=False)) + 1000
    symbols = [f"Gm{i}" if i % 3 else f"Syn{i}" for i in range(1, n_genes + 1)]
    return pd.DataFrame(
        {
            "gene_identifier": [f"ENSMUSG{i:011d}" for i in ids],
            "gene_symbol": symbols,
            "name": [f"synthetic gene {s}" for s in symbols],
            "mapped_ncbi_identifier": [f"NCBIGene:{100000 + int(i)}" for i in ids],
            "comment": ["" if i % 7 else "synthetic" for i in range(n_genes)],
        }
    )


def regions_table() -> pd.DataFrame:
    acronyms = sorted({r for spec in MATRICES for r in spec.regions})
    return pd.DataFrame(
        {
            "acronym": acronyms,
            "name": [f"region {a}" for a in acronyms],
            "order": range(len(acronyms)),
            "color_hex_triplet": ["#7FC97F"] * len(acronyms),
        }
    )


def _libraries(rng: np.random.Generator, spec: MatrixSpec, n: int) -> pd.DataFrame:
    """``n`` libraries of one matrix: sample label, library label, donor."""
    plate = rng.integers(100, 999, size=n)
    well = wells(rng, n)
    day = rng.integers(1, 28, size=n)
    return pd.DataFrame(
        {
            "barcoded_cell_sample_label": [f"{p}_{w}" for p, w in zip(plate, well, strict=True)],
            "library_label": [f"L8TX_2010{d:02d}_01_{w}" for d, w in zip(day, well, strict=True)],
            "donor_label": [f"Snap25-IRES2-Cre;Ai14-{550000 + int(p)}" for p in plate],
            "donor_sex": rng.choice(["F", "M"], size=n),
        }
    ).drop_duplicates("barcoded_cell_sample_label", ignore_index=True)


def _assign_matrices(rng: np.random.Generator, taxonomy: pd.DataFrame) -> np.ndarray:
    """Matrix index of every cell, cluster by cluster; big clusters span several files."""
    shares = np.array([spec.share for spec in MATRICES])
    out = []
    for size in taxonomy["n_cells"]:
        n_files = 1 if size == 1 else (2 if size < 100 else 3)
        chosen = rng.choice(len(MATRICES), size=n_files, replace=False, p=shares)
        p = shares[chosen] / shares[chosen].sum()
        out.append(chosen[rng.choice(n_files, size=size, p=p)])
    return np.concatenate(out)


def cells_table(rng: np.random.Generator, taxonomy: pd.DataFrame) -> pd.DataFrame:
    """The cell metadata table (plus an internal ``_matrix`` column)."""
    matrix = _assign_matrices(rng, taxonomy)
    alias = np.repeat(taxonomy["cluster_alias"].to_numpy(), taxonomy["n_cells"].to_numpy())
    parts = []
    for m, spec in enumerate(MATRICES):
        where = np.flatnonzero(matrix == m)
        parts.append(_cells_of_matrix(rng, spec, where.size).assign(cluster_alias=alias[where]))
    cells = pd.concat(parts, ignore_index=True)
    cells = cells.iloc[rng.permutation(len(cells))].reset_index(drop=True)
    _make_labels_unique(rng, cells)
    return cells


def _cells_of_matrix(rng: np.random.Generator, spec: MatrixSpec, n: int) -> pd.DataFrame:
    libraries = _libraries(rng, spec, n=max(2, min(6, n // 100 + 2)))
    library = libraries.iloc[rng.integers(0, len(libraries), size=n)].reset_index(drop=True)
    cells = library.assign(
        cell_barcode=random_barcodes(rng, n),
        feature_matrix_label=spec.label,
        entity="cell",
        brain_section_label="",
        library_method=spec.library_method,
        region_of_interest_acronym=rng.choice(spec.regions, size=n),
        donor_genotype="Ai14(RCL-tdT)/wt",
        dataset_label=spec.dataset,
        x=np.round(rng.normal(0, 10, size=n), 6),
        y=np.round(rng.normal(0, 10, size=n), 6),
        abc_sample_id=[_uuid(rng) for _ in range(n)],
    )
    # The same barcode in two samples: labels stay unique, barcodes do not.
    if n >= 4:
        cells.loc[n - 1, "cell_barcode"] = cells.loc[0, "cell_barcode"]
    cells["cell_label"] = cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"]
    return cells


def _make_labels_unique(rng: np.random.Generator, cells: pd.DataFrame) -> None:
    while (dup := cells["cell_label"].duplicated()).any():
        cells.loc[dup, "cell_barcode"] = random_barcodes(rng, int(dup.sum()))
        cells["cell_label"] = cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"]


def _uuid(rng: np.random.Generator) -> str:
    h = "".join(f"{int(v):02x}" for v in rng.integers(0, 256, 16))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def write_matrix_pair(root: Path, rng, spec: MatrixSpec, cells: pd.DataFrame, genes) -> dict:
    """Write ``<label>-raw.h5ad`` and ``<label>-log2.h5ad`` with the same shuffled rows."""
    mine = cells[cells["feature_matrix_label"] == spec.label]
    extras = _extra_cells(rng, spec, mine, set(cells["cell_label"]))
    obs = pd.concat([mine, extras], ignore_index=True)
    obs = obs.iloc[rng.permutation(len(obs))].reset_index(drop=True)
    counts = random_counts(rng, len(obs), len(genes))
    obs_df = pd.DataFrame(
        {
            "cell_barcode": obs["cell_barcode"].to_numpy(),
            "library_label": obs["library_label"].to_numpy(),
            "anatomical_division_label": spec.division,
        },
        index=pd.Index(obs["cell_label"].to_numpy(), name="cell_label"),
    )
    parent_rows = np.sort(rng.choice(len(obs) * 3, size=len(obs), replace=False))
    write_raw_and_log2(
        root, spec.relative_path, obs_df, gene_var(genes), counts, spec.storage,
        lambda variant: {"parent": f"AIT21.0-{spec.dataset}-{variant}", "parent_layer": "X",
                         "parent_rows": parent_rows},
    )  # fmt: skip
    return {
        "dataset": spec.dataset,
        "storage": spec.storage,
        "raw": spec.relative_path("raw"),
        "log2": spec.relative_path("log2"),
        "n_rows": len(obs),
        "n_extra": len(extras),
    }


def _extra_cells(rng, spec: MatrixSpec, mine: pd.DataFrame, taken: set) -> pd.DataFrame:
    """Cells present in the matrix file but absent from cell_metadata.csv."""
    n = max(3, len(mine) // 25)
    samples = mine.drop_duplicates("barcoded_cell_sample_label")
    if samples.empty:
        samples = _libraries(rng, spec, 2)
    pick = samples.iloc[rng.integers(0, len(samples), size=n)].reset_index(drop=True)
    extras = pd.DataFrame(
        {
            "cell_barcode": random_barcodes(rng, n),
            "library_label": pick["library_label"].to_numpy(),
            "barcoded_cell_sample_label": pick["barcoded_cell_sample_label"].to_numpy(),
        }
    )
    extras["cell_label"] = extras["cell_barcode"] + "-" + extras["barcoded_cell_sample_label"]
    return extras[~extras["cell_label"].isin(taken)].drop_duplicates("cell_label")
