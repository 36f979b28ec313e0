"""Synthetic SEA-AD-Multiregion-10X and SEA-AD-CaH-10X (release 20260711), in the shapes
of the project's notes on the newer datasets (``abc_datasets_newer.md``).

Traps reproduced: the metadata directory version (20260711) is not the matrix directory
version (20260630); the cell table has no group, x or y; ``alignment_job_id`` mixes
integers and 40-hex hashes; ``umi_count`` is written as a float; donor, library and
disease side tables have column names with spaces, parentheses and slashes; Multiregion
leaves about 30 % of its cells out of ``cell_to_cluster_membership`` (they are in the
matrices all the same); CaH assigns every cell, flags some ``Used in analysis`` False and
has a neighborhood with a trailing space (``'LSX '``); levels are capitalised.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.demo.common import random_barcodes, wells
from abc_downsample.demo.genes import human_genes
from abc_downsample.demo.newer_common import (
    alignment_job_ids,
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

RELEASE = "20260711"


@dataclass(frozen=True)
class SeaAd:
    name: str
    metadata: str
    matrix_dir: str
    regions: dict[str, tuple[str, int]]  # feature_matrix_label -> (region name, real cells)
    taxonomy: TaxonomyShape
    parents: tuple[tuple[str, str], ...]  # (top term, subclass)
    assigned: float  # share of the cells in cell_to_cluster_membership
    library_prefix: str  # L8XR (Multiregion), L8HX (CaH)
    library_methods: tuple[str, ...]
    disease_tail: tuple[str, ...]  # the last columns of disease.csv
    qc_flag: bool  # a "Used in analysis" column


MULTIREGION = SeaAd(
    name="SEA-AD-Multiregion-10X",
    metadata="metadata/SEA-AD-Multiregion-10X/20260711",
    matrix_dir="expression_matrices/SEA-AD-Multiregion-10X/20260630",
    regions={
        "AnG-10X": ("angular gyrus", 389_804),
        "DFC-10X": ("dorsolateral prefrontal cortex", 1_807_513),
        "FI-10X": ("frontal insula", 321_843),
        "HIP-10X": ("hippocampus", 307_789),
        "ITG-10X": ("inferior temporal gyrus", 626_792),
        "LEC-10X": ("lateral entorhinal cortex", 239_721),
        "MEC-10X": ("medial entorhinal cortex", 1_485_051),
        "MTG-10X": ("middle temporal gyrus", 1_861_334),
        "STG-10X": ("superior temporal gyrus", 734_344),
        "V1C-10X": ("primary visual cortex", 867_151),
    },
    taxonomy=TaxonomyShape(
        directory="metadata/SEA-AD-Multiregion-taxonomy/20260711",
        date="20260630",
        levels=(Level("Class", "CLAS", 3), Level("Subclass", "SUBC", 29),
                Level("Supertype", "SUPR", 207)),
        name_first=True,
        cross_links=("CCN20230508_label",),
    ),
    parents=tuple(
        (top, sub)
        for top, subs in (
            ("Neuronal: GABAergic", ("Lamp5", "Pvalb", "Sst", "Vip", "Chandelier")),
            ("Neuronal: Glutamatergic", ("L2/3 IT", "L4 IT", "L5 ET", "L5/6 NP", "L6 CT")),
            ("Non-neuronal and Non-neural", ("Astrocyte", "Oligodendrocyte", "OPC",
                                             "Microglia-PVM", "VLMC & Perivascular")),
        )
        for sub in subs
    ),
    assigned=6_013_346 / 8_641_342,
    library_prefix="L8XR",
    library_methods=("10xMultiome;GEX", "10xV3.1", "10xV3.1_HT"),
    disease_tail=("Severely Affected Donor", "CPS_Global"),
    qc_flag=False,
)  # fmt: skip


CAH = SeaAd(
    name="SEA-AD-CaH-10X",
    metadata="metadata/SEA-AD-CaH-10X/20260711",
    matrix_dir="expression_matrices/SEA-AD-CaH-10X/20260630",
    regions={"CaH-10X": ("caudate head", 886_037)},
    taxonomy=TaxonomyShape(
        directory="metadata/SEA-AD-CaH-taxonomy/20260711",
        date="20260701",
        levels=(Level("Neighborhood", "NBHD", 8), Level("Subclass", "SUBC", 16),
                Level("Supertype", "SUPR", 66)),
        name_first=True,
        cross_links=("CCN20230508_label", "CCN20250428_label"),
    ),
    parents=tuple(
        (top, sub)
        for top, subs in (
            ("Astro-Epen", ("Astrocyte", "Ependymal")),
            ("CGE", ("CGE GABA",)),
            ("Immune", ("Microglia-PVM",)),
            ("LGE", ("STR D1 MSN", "STR D2 MSN", "STR Hybrid MSN")),
            ("LSX ", ("LSX GABA",)),  # the trailing space is the real term's
            ("MGE", ("STR SST Chodl GABA", "STR Cholinergic GABA")),
            ("OPC-Oligo", ("OPC", "Oligodendrocyte")),
            ("Vascular", ("Endothelial", "VLMC", "Pericyte")),
        )
        for sub in subs
    ),
    assigned=1.0,
    library_prefix="L8HX",
    library_methods=("10xMultiome;GEX", "10xV3.1_HT"),
    disease_tail=("CPS", "CPS_AT8", "CPS_6E10"),
    qc_flag=True,
)  # fmt: skip


SHAPES = {shape.name: shape for shape in (MULTIREGION, CAH)}


RACES = (
    "White", "Black/ African American", "Asian", "American Indian/ Alaska Native",
    "Native Hawaiian or Pacific Islander", "Unknown or unreported", "Other",
)  # fmt: skip


DISEASE_COLUMNS = (
    "Overall AD neuropathological Change", "Thal", "Braak", "CERAD score",
    "Overall CAA Score", "Highest Lewy Body Disease", "Total Microinfarcts (not observed grossly)",
    "Total microinfarcts in screening sections", "Atherosclerosis", "Arteriolosclerosis",
    "LATE", "Cognitive Status", "Age of Dementia diagnosis", "Known head injury",
    "Have they had neuroimaging", "APOE Genotype",
)  # fmt: skip


def write(root: Path, rng: np.random.Generator, ctx, name: str) -> dict:
    """Write one SEA-AD dataset (``name``) under ``root``; return what tests need."""
    shape = SHAPES[name]
    libraries = _libraries(rng, shape)
    cells = population(rng, {m: n for m, (_, n) in shape.regions.items()}, ctx.n_cells,
                       lambda r, matrix_of: _cells(r, shape, libraries, matrix_of))  # fmt: skip
    listed = cells[cells["_in_metadata"]]
    _, taxonomy = groups(
        rng, shape.taxonomy, listed, shape.assigned, list(shape.parents),
        lambda parent, k: f"{parent[-1]}_{k}", integer_aliases,
    )  # fmt: skip
    genes = human_genes(np.random.default_rng([ctx.seed, 36_601]), ctx.n_genes)
    metadata = {
        "cell_metadata": listed[_columns(shape)],
        "gene": genes,
        "donor": _donors(rng, libraries),
        "library": _library_table(rng, shape, libraries),
        "disease": _disease(rng, shape, libraries),
        "value_sets": value_sets({"library_method": ("library", list(shape.library_methods)),
                                  "donor_sex": ("donor", ["Female", "Male"])}),
        "views/example_gene_expression": example_expression(
            rng, listed["cell_label"], genes["gene_symbol"]),
    }  # fmt: skip
    files = write_tables(root, shape.metadata, metadata)
    files += write_tables(root, shape.taxonomy.directory, taxonomy)
    obs = ["cell_barcode", "barcoded_cell_sample_label", "library_label", "alignment_job_id",
           "exp_component_name"]  # fmt: skip
    matrices = write_matrices(root, rng, shape.matrix_dir, cells, obs, genes)
    assigned = taxonomy["cell_to_cluster_membership"]["cell_label"]
    return dataset_info(RELEASE, shape.metadata, f"{shape.metadata}/gene.csv",
                        shape.taxonomy.directory, matrices, listed, assigned,
                        files + matrix_keys(matrices))  # fmt: skip


def _columns(shape: SeaAd) -> list[str]:
    qc = ["Used in analysis"] if shape.qc_flag else []
    return ["cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
            "alignment_job_id", "doublet_score", "umi_count", *qc, "donor_label",
            "exp_component_name", "feature_matrix_label", "dataset_label"]  # fmt: skip


def _libraries(rng: np.random.Generator, shape: SeaAd) -> pd.DataFrame:
    """Three libraries (one sample each) per region, some with two alignment jobs."""
    regions = np.repeat(list(shape.regions), 3)
    n = len(regions)
    well = wells(rng, n)
    days = dates(rng, n, (22, 23))
    donors = [f"H{y}.33.{k:03d}" for y, k in zip(rng.integers(18, 24, 6), range(1, 7),
                                                strict=True)]  # fmt: skip
    jobs = alignment_job_ids(rng, 2 * n)
    return pd.DataFrame(
        {
            "library_label": [f"{shape.library_prefix}_{d}_02_{w}" for d, w in zip(days, well,
                                                                                   strict=True)],
            "barcoded_cell_sample_label": [f"{p}_{w}" for p, w in zip(
                rng.choice(np.arange(1000, 3000), n, replace=False), well, strict=True)],
            "donor_label": rng.choice(donors, n),
            "region": regions,
            # the second job only for some libraries: 913 jobs for 908 libraries
            "jobs": [(jobs[2 * i], jobs[2 * i + 1]) if i % 4 == 1 else (jobs[2 * i],)
                     for i in range(n)],
        }
    )  # fmt: skip


def _cells(rng, shape: SeaAd, libraries: pd.DataFrame, matrix_of: np.ndarray) -> pd.DataFrame:
    n = len(matrix_of)
    library = libraries.iloc[rows_for(rng, matrix_of, libraries, "region")].reset_index(drop=True)
    second = rng.random(n) < 0.5  # of a library's two alignment jobs, if it has two
    cells = library[["barcoded_cell_sample_label", "library_label", "donor_label"]].assign(
        cell_barcode=random_barcodes(rng, n),
        alignment_job_id=[jobs[-1] if s else jobs[0] for jobs, s in zip(library["jobs"], second,
                                                                        strict=True)],
        doublet_score=np.round(rng.random(n) * 0.4, 6),
        umi_count=rng.integers(1000, 90_000, n).astype(float),
        feature_matrix_label=matrix_of,
        dataset_label=shape.name,
    )
    if shape.qc_flag:  # QC-failed cells keep their supertype (every CaH cell has one)
        cells["Used in analysis"] = rng.random(n) > 0.15
    barcodes_repeat(cells, "barcoded_cell_sample_label")
    cells["cell_label"] = cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"]
    cells["exp_component_name"] = (
        cells["cell_barcode"] + "-" + cells["library_label"] + "-" + cells["alignment_job_id"]
    )
    return cells


def _donors(rng: np.random.Generator, libraries: pd.DataFrame) -> pd.DataFrame:
    donors = sorted(set(libraries["donor_label"]))
    n = len(donors)
    age = rng.integers(65, 104, n)
    table = pd.DataFrame({
        "donor_label": donors,
        "donor_species": "NCBITaxon:9606",
        "species_scientific_name": "Homo sapiens",
        "species_genus": "Human",
        "donor_sex": rng.choice(["Female", "Male"], n),
        "donor_gender": rng.choice(["Female", "Male"], n),
        "donor_age": [f"{a} yrs" if a < 100 else "100+ yrs" for a in age],
        "donor_age_value": age,
        "donor_age_unit": "years",
    })  # fmt: skip
    for race in RACES:
        table[f"Race (choice={race})"] = rng.choice(["Checked", "Unchecked"], n)
    return table.assign(**{
        "Hispanic/Latino": rng.choice(["No", "Yes"], n),
        "specify other race": "",
        "Highest level of education": rng.choice(["Bachelor's degree", "High school"], n),
        "Years of education": rng.integers(10, 21, n),
        "PMI": np.round(rng.uniform(2, 10, n), 2),
        "Fresh Brain Weight": rng.integers(1000, 1500, n),
        "Brain pH": np.round(rng.uniform(6, 7, n), 2),
        "Primary Study Name": "ACT",
        "donor_race": "White",
    })  # fmt: skip


def _library_table(rng, shape: SeaAd, libraries: pd.DataFrame) -> pd.DataFrame:
    n = len(libraries)
    region = libraries["region"].str.removesuffix("-10X")
    return pd.DataFrame({
        "library_label": libraries["library_label"],
        "library_method": rng.choice(shape.library_methods, n),
        "barcoded_cell_sample_label": libraries["barcoded_cell_sample_label"],
        "enrichment_population": rng.choice(["70% NeuN+, 30% NeuN-", "No FACS"], n),
        "cell_specimen_type": "Nuclei",
        "region_of_interest_label": region,
        "region_of_interest_name": libraries["region"].map(
            {m: name for m, (name, _) in shape.regions.items()}),
        "parcellation_term_identifier": [f"DHBA:{10_000 + k}" for k in range(n)],
        "Brain Region": region,
        "donor_label": libraries["donor_label"],
    })  # fmt: skip


def _disease(rng, shape: SeaAd, libraries: pd.DataFrame) -> pd.DataFrame:
    donors = sorted(set(libraries["donor_label"]))
    n = len(donors)
    table = pd.DataFrame({"donor_label": donors})
    for column in DISEASE_COLUMNS:
        table[column] = rng.choice(["Not AD", "Low", "Intermediate", "High"], n)
    table["APOE Genotype"] = rng.choice(["3/3", "3/4", "2/3", "4/4"], n)
    for column in shape.disease_tail:  # continuous pathology scores, and a Y/N flag
        scores = np.round(rng.random(n), 4)
        table[column] = scores if column.startswith("CPS") else np.where(scores > 0.8, "Y", "N")
    return table
