"""Synthetic Developing-Mouse-Vis-Cortex-10X (release 20260131).

Traps reproduced: four lowercase levels ``class, subclass, cluster, subcluster`` with the
alias naming a subcluster; subcluster labels padded to four digits in ``cluster.csv``
(``CS20260131_SCLU_0051``) but three in the term table (``CS20260131_SCLU_051``); x/y only
in the taxonomy's ``cell_2d_embedding_coordinates`` (the cell table has none, nor a group);
the cell table puts ``dataset_label`` before ``feature_matrix_label``; a few cells have no
cluster [inferred: the real count was not printed]; its own ``gene.csv`` has WMB's columns
and, like the real one (same size), WMB's genes.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.demo.common import random_barcodes, wells
from abc_downsample.demo.newer_common import (
    barcodes_repeat,
    dataset_info,
    dates,
    example_expression,
    groups,
    matrix_keys,
    population,
    value_sets,
    write_matrices,
    write_tables,
)
from abc_downsample.demo.newer_taxonomy import Level, TaxonomyShape, integer_aliases

RELEASE = "20260131"
NAME = "Developing-Mouse-Vis-Cortex-10X"
METADATA = "metadata/Developing-Mouse-Vis-Cortex-10X/20260131"
MATRIX_DIR = "expression_matrices/Developing-Mouse-Vis-Cortex-10X/20260131"
COLUMNS = ["cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
           "alignment_id", "log.qc.score.cr6", "synchronized_age", "donor_label",
           "dataset_label", "feature_matrix_label"]  # fmt: skip
ASSIGNED = 0.97

TAXONOMY = TaxonomyShape(
    directory="metadata/Developing-Mouse-Vis-Cortex-taxonomy/20260131",
    date="20260131",
    levels=(Level("class", "CLAS", 15), Level("subclass", "SUBC", 40),
            Level("cluster", "CLUS", 148), Level("subcluster", "SCLU", 714)),
    name_first=True,
    cluster_pad=4,
    cross_links=("CCN20230722_label",),
)  # fmt: skip

CLASSES = ("Astro-Epen", "CNU-MGE GABA", "CR Glut", "CTX-CGE GABA", "CTX-MGE GABA", "Glioblast",
           "IMN", "IP", "IT Glut", "Immune", "NEC", "OPC-Oligo", "RG", "Vascular", "nonIT Glut")
AGES = ("E11.5", "E13.5", "E15.5", "E18.5", "P0", "P4", "P14", "P28", "P56", "P68")
REGIONS = ("VISp", "VIS", "VIS-PTLp", "CH-BS", "WholeBrain")


def write(root: Path, rng: np.random.Generator, ctx) -> dict:
    """Write the dataset under ``root``; return what tests need."""
    donors = _donors(rng)
    libraries = _libraries(rng, donors)
    cells = population(rng, {NAME: 1.0}, ctx.n_cells,
                       lambda r, matrix_of: _cells(r, libraries, matrix_of))  # fmt: skip
    listed = cells[cells["_in_metadata"]]
    _, taxonomy = groups(rng, TAXONOMY, listed, ASSIGNED, _parents(rng),
                         lambda parent, k: f"{parent[-1]}_{k}", integer_aliases)  # fmt: skip
    genes = ctx.wmb_genes
    metadata = {
        "cell_metadata": listed[COLUMNS],
        "gene": genes,
        "donor": donors,
        "library": libraries.drop(columns="_age"),
        "value_sets": value_sets({"age_bin": ("donor", sorted(set(donors["age_bin"])))}),
        "views/example_gene_expression": example_expression(rng, listed["cell_label"],
                                                            genes["gene_symbol"]),
    }  # fmt: skip
    files = write_tables(root, METADATA, metadata)
    files += write_tables(root, TAXONOMY.directory, taxonomy)
    obs = ["cell_barcode", "barcoded_cell_sample_label", "library_label"]
    matrices = write_matrices(root, rng, MATRIX_DIR, cells, obs, genes)
    assigned = taxonomy["cell_to_cluster_membership"]["cell_label"]
    return dataset_info(RELEASE, METADATA, f"{METADATA}/gene.csv", TAXONOMY.directory, matrices,
                        listed, assigned, files + matrix_keys(matrices))  # fmt: skip


def _parents(rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """(class, subclass, cluster) of every cluster, clusters named ``5312_Microglia NN_1``
    (subclusters then add ``_3``)."""
    parents, number = [], 5300
    for class_name in CLASSES:
        for k in range(int(rng.integers(1, 3))):
            subclass = f"{class_name} {k + 1}"
            for j in range(int(rng.integers(1, 3))):
                number += 1
                parents.append((class_name, subclass, f"{number}_{subclass}_{j + 1}"))
    return parents


def _donors(rng: np.random.Generator) -> pd.DataFrame:
    n = len(AGES)
    embryonic = np.array([a.startswith("E") for a in AGES])
    return pd.DataFrame({
        "donor_label": [f"C67BL6J-{v}" for v in rng.choice(np.arange(600_000, 700_000), n,
                                                             replace=False)],
        "donor_species": "NCBITaxon:10090",
        "species_scientific_name": "Mus musculus",
        "species_genus": "Mouse",
        "donor_sex": rng.choice(["Female", "Male"], n),
        "donor_age_value": [float(a[1:]) for a in AGES],
        "donor_age_unit": "days",
        "donor_age_reference_point": np.where(embryonic, "conception", "birth"),
        "donor_age": list(AGES),
        "age_bin": [a if a.startswith("E") else f"P{int(a[1:]) // 7 * 7}" for a in AGES],
    })  # fmt: skip


def _libraries(rng: np.random.Generator, donors: pd.DataFrame) -> pd.DataFrame:
    n = 2 * len(donors)
    well = wells(rng, n)
    donor = np.resize(donors["donor_label"].to_numpy(), n)
    return pd.DataFrame({
        "library_label": [f"L8TX_{d}_01_{w}" for d, w in zip(dates(rng, n, (21, 22)), well,
                                                              strict=True)],
        "library_technique": rng.choice(["10xV3;GEXOnly", "10xV3.1;GEXOnly"], n),
        "barcoded_cell_sample_label": [f"{p}_{w}" for p, w in zip(
            rng.choice(np.arange(800, 1000), n, replace=False), well, strict=True)],
        "enrichment_population": "No FACS",
        "cell_specimen_type": "Cells",
        "parcellation_term_identifier": "MBA:385",
        "region_of_interest_name": "Primary visual area",
        "region_of_interest_label": rng.choice(REGIONS, n),
        "donor_label": donor,
        "_age": np.resize(donors["donor_age"].to_numpy(), n),
    })  # fmt: skip


def _cells(rng, libraries: pd.DataFrame, matrix_of: np.ndarray) -> pd.DataFrame:
    n = len(matrix_of)
    library = libraries.iloc[rng.integers(0, len(libraries), n)].reset_index(drop=True)
    alignment = dict(zip(libraries["library_label"],
                         rng.integers(1_100_000_000, 1_200_000_000, len(libraries)),
                         strict=True))  # fmt: skip
    cells = pd.DataFrame({
        "cell_barcode": random_barcodes(rng, n),
        "barcoded_cell_sample_label": library["barcoded_cell_sample_label"],
        "library_label": library["library_label"],
        "alignment_id": library["library_label"].map(alignment),
        "log.qc.score.cr6": np.round(rng.uniform(100, 500, n), 6),
        "synchronized_age": library["_age"],
        "donor_label": library["donor_label"],
        "dataset_label": NAME,
        "feature_matrix_label": matrix_of,
    })  # fmt: skip
    barcodes_repeat(cells, "barcoded_cell_sample_label")
    cells.insert(0, "cell_label", cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"])
    return cells
