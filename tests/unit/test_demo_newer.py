"""The synthetic releases of the newer datasets have the shapes of the facts file
(``abc_datasets_newer.md``): columns, traps, unassigned cells, extra matrix cells, manifests
per release; and the independent reader (``newer_truth``) reads them."""

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PROJECT, md5
from newer_truth import DATASETS, manifest, read_csv, read_truth, source_rows
from synthetic_paths import CELLS, GENES

from abc_downsample.demo.release import NEWEST, ensure_release, write_release
from abc_downsample.errors import AbcError

NEWER = tuple(DATASETS)
ARGS = {"n_cells": 400, "n_genes": 20, "seed": 0}
RELEASES = ["20240330", "20250531", "20251031", "20260131", "20260711", "20261031"]
FIRST = {
    "Consensus-WMB-Macosko-10X": "20251031", "Consensus-WMB-AIBS-10X": "20251031",
    "Developing-Mouse-Vis-Cortex-10X": "20260131", "SEA-AD-Multiregion-10X": "20260711",
    "SEA-AD-CaH-10X": "20260711", "HMBA-10xMultiome-Subcortex": "20261031",
}  # fmt: skip
SEA_AD = ["cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
          "alignment_job_id", "doublet_score", "umi_count", "donor_label", "exp_component_name",
          "feature_matrix_label", "dataset_label"]  # fmt: skip
CONSENSUS = ["cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
             "dataset_label", "feature_matrix_label"]  # fmt: skip
CELL_COLUMNS = {
    "SEA-AD-Multiregion-10X": SEA_AD,
    "SEA-AD-CaH-10X": SEA_AD[:7] + ["Used in analysis"] + SEA_AD[7:],
    "Consensus-WMB-Macosko-10X": CONSENSUS,
    "Consensus-WMB-AIBS-10X": CONSENSUS,
    "Developing-Mouse-Vis-Cortex-10X": [
        "cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
        "alignment_id", "log.qc.score.cr6", "synchronized_age", "donor_label", "dataset_label",
        "feature_matrix_label"],
    "HMBA-10xMultiome-Subcortex": [
        "cell_label", "barcoded_cell_sample_label", "nCount_RNA", "nFeature_RNA",
        "doublet_score", "donor_label", "alignment_job_id", "In_BG_taxonomy_dataset",
        "feature_matrix_label", "dataset_label"],
}  # fmt: skip
MEMBERSHIP_COLUMNS = {
    "SEA-AD-Multiregion-10X": ["cell_label", "cluster_alias", "label"],
    "SEA-AD-CaH-10X": ["cell_label", "cluster_alias", "label"],
    "Consensus-WMB-Macosko-10X": ["cell_label", "cluster_alias"],
    "Consensus-WMB-AIBS-10X": ["cell_label", "cluster_alias"],
    "Developing-Mouse-Vis-Cortex-10X": ["cell_label", "cluster_alias", "label"],
    "HMBA-10xMultiome-Subcortex": ["cell_label", "cluster_alias"],
}
TERM_COLUMNS = ["label", "name", "cluster_annotation_term_set_label",
                "cluster_annotation_term_set_name", "color_hex_triplet", "term_order",
                "term_set_order", "parent_term_label", "parent_term_name",
                "parent_term_set_label"]  # fmt: skip
LONG_COLUMNS = ["cluster_annotation_term_label", "cluster_annotation_term_set_name",
                "cluster_annotation_term_name", "cluster_alias",
                "cluster_annotation_term_set_label"]  # fmt: skip
NAME_FIRST = {"SEA-AD-Multiregion-10X", "SEA-AD-CaH-10X", "Developing-Mouse-Vis-Cortex-10X"}
WMB_META = {"20240330": "20241115", "20250531": "20241115", "20251031": "20251031",
            "20260131": "20251031", "20260711": "20251031", "20261031": "20251031"}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Every newer dataset and HMBA-BG (whose marmoset genes Subcortex reads), at 20261031."""
    root = tmp_path_factory.mktemp("newer") / "bucket"
    datasets = (*NEWER, "HMBA-10xMultiome-BG")
    return write_release(root, release="20261031", datasets=datasets, **ARGS)


@pytest.fixture(scope="module")
def truths(release):
    return {name: read_truth(release["root"], name, "20261031") for name in NEWER}


def listed_files(data: dict) -> dict[str, dict]:
    """{relative_path: entry} of a manifest's file_listing."""
    found = {}
    for directory in data["file_listing"].values():
        for kind, names in directory.items():
            for group in names.values():
                for shape in group.values() if kind == "expression_matrices" else [group]:
                    for entry in shape["files"].values():
                        found[entry["relative_path"]] = entry
    return found


def taxonomy_table(release, name: str, table: str) -> pd.DataFrame:
    return read_csv(release["root"], f"{release['newer'][name]['taxonomy']}/{table}.csv")


# ---- releases and manifests -----------------------------------------------------------


def test_each_release_lists_the_datasets_that_existed_then(release):
    root = Path(release["root"])
    assert sorted(p.name for p in (root / "releases").iterdir()) == RELEASES
    assert list(release["releases"]) == RELEASES
    for version in RELEASES:
        data = manifest(root, version)
        assert data["version"] == version
        for name, first in FIRST.items():
            assert (name in data["file_listing"]) == (version >= first), (version, name)
        wmb = data["directory_listing"]["WMB-10X"]["directories"]["metadata"]
        assert wmb["relative_path"] == f"metadata/WMB-10X/{WMB_META[version]}"
        for path, entry in listed_files(data).items():
            kind, directory, dir_version = path.split("/")[:3]
            listed = data["directory_listing"][directory]["directories"][kind]
            assert dir_version == listed["version"], f"{version}: {path} in two versions"
            assert entry["size"] == (root / path).stat().st_size
            assert entry["file_hash"] == md5(root / path)
        assert set(listed_files(data)) == set(release["listings"][version])


def test_older_releases_and_wmb_files_are_those_of_a_plain_release(release, tmp_path):
    plain = write_release(tmp_path, datasets=("HMBA-10xMultiome-BG",), **ARGS)
    root = Path(release["root"])
    for key in ("releases/20240330/manifest.json", "releases/20250531/manifest.json"):
        assert md5(root / key) == md5(tmp_path / key), key
    for path, facts in plain["files"].items():
        assert release["files"][path] == facts, path
    moved = "metadata/WMB-10X/20251031/cell_metadata.csv"
    assert md5(root / moved) == md5(root / CELLS)


def test_a_dataset_is_the_same_whatever_else_the_release_holds(release, tmp_path):
    alone = write_release(tmp_path, release="20260711", datasets=("SEA-AD-CaH-10X",), **ARGS)
    info = alone["newer"]["SEA-AD-CaH-10X"]
    assert info["files"] == release["newer"]["SEA-AD-CaH-10X"]["files"]
    for path in info["files"]:
        assert alone["files"][path] == release["files"][path], path
    assert sorted(alone["releases"]) == ["20240330", "20250531", "20251031", "20260131",
                                         "20260711"]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"release": "20260131", "datasets": ("SEA-AD-CaH-10X",)}, "20260711 or later"),
        ({"release": "20261031", "datasets": ("Nonexistent-10X",)}, "choose one of"),
    ],
)
def test_a_dataset_the_release_cannot_hold_is_a_one_line_error(tmp_path, kwargs, words):
    with pytest.raises(AbcError) as err:
        write_release(tmp_path, **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not any(tmp_path.iterdir()), "nothing written"


# ---- cell tables and memberships ------------------------------------------------------


@pytest.mark.parametrize("name", NEWER)
def test_cell_tables_have_the_real_columns_and_no_group(release, name):
    cells = read_csv(release["root"], release["newer"][name]["cells"])
    assert list(cells.columns) == CELL_COLUMNS[name]
    assert cells["cell_label"].is_unique
    membership = taxonomy_table(release, name, "cell_to_cluster_membership")
    assert list(membership.columns) == MEMBERSHIP_COLUMNS[name]
    assert membership["cell_label"].is_unique


@pytest.mark.parametrize("name", NEWER)
def test_membership_leaves_cells_out_as_the_facts_say(release, truths, name):
    truth = truths[name]
    assert len(truth.assigned) + len(truth.unassigned) == len(truth.cells)
    assert len(truth.assigned) == release["newer"][name]["n_assigned"]
    share = len(truth.unassigned) / len(truth.cells)
    expected = {"SEA-AD-Multiregion-10X": (0.25, 0.35), "SEA-AD-CaH-10X": (0, 0)}
    low, high = expected.get(name, (0.001, 0.05))
    assert low <= share <= high, share
    membership = taxonomy_table(release, name, "cell_to_cluster_membership")
    in_table_order = membership["cell_label"].isin(truth.cells.index)
    assert list(membership.loc[in_table_order, "cell_label"]) != list(truth.assigned.index)


def test_sea_ad_traps(release, truths):
    truth = truths["SEA-AD-Multiregion-10X"]
    cells = truth.cells
    data = manifest(release["root"], "20261031")["directory_listing"]["SEA-AD-Multiregion-10X"]
    assert data["directories"]["metadata"]["version"] == "20260711"
    assert data["directories"]["expression_matrices"]["version"] == "20260630"
    regions = ["AnG", "DFC", "FI", "HIP", "ITG", "LEC", "MEC", "MTG", "STG", "V1C"]
    assert sorted(truth.matrices) == [f"{region}-10X" for region in regions]
    jobs = cells["alignment_job_id"]
    assert jobs.str.fullmatch(r"\d+").any() and jobs.str.fullmatch(r"[0-9a-f]{40}").any()
    assert (jobs.str.fullmatch(r"\d+") | jobs.str.fullmatch(r"[0-9a-f]{40}")).all()
    expected = cells["cell_barcode"] + "-" + cells["library_label"] + "-" + jobs
    assert (cells["exp_component_name"] == expected).all()
    assert cells["exp_component_name"].is_unique
    assert cells["umi_count"].str.endswith(".0").all()
    metadata = Path(release["root"], "metadata/SEA-AD-Multiregion-10X/20260711")
    donor = pd.read_csv(metadata / "donor.csv")
    assert "Race (choice=Black/ African American)" in donor.columns
    assert {"Hispanic/Latino", "Brain pH", "donor_age"} <= set(donor.columns)
    library = pd.read_csv(metadata / "library.csv")
    assert list(library.columns)[-2:] == ["Brain Region", "donor_label"]
    disease = pd.read_csv(metadata / "disease.csv")
    assert disease.columns[0] == "donor_label" and "Total Microinfarcts (not observed grossly)" in (
        disease.columns
    )
    assert list(truth.genes.columns) == ["gene_identifier", "gene_symbol", "feature_types",
                                         "genome"]  # fmt: skip
    assert truth.genes["gene_identifier"].str.fullmatch(r"ENSG\d{11}").all()
    assert set(truth.terms["Class"]) == {
        "Neuronal: GABAergic", "Neuronal: Glutamatergic", "Non-neuronal and Non-neural"}
    assert "VLMC & Perivascular" in set(truth.terms["Subclass"])


def test_cah_traps(truths):
    truth = truths["SEA-AD-CaH-10X"]
    assert "LSX " in set(truth.terms["Neighborhood"]), "the trailing space is kept"
    assert "LSX " in truth.colors["Neighborhood"]
    assert set(truth.cells["Used in analysis"]) == {"True", "False"}
    assert truth.unassigned.empty
    assert set(truth.matrices) == {"CaH-10X"}


def test_consensus_taxonomy_traps(release, truths):
    sets = taxonomy_table(release, "Consensus-WMB-Macosko-10X", "cluster_annotation_term_set")
    assert list(sets.sort_values("order", key=lambda s: s.astype(int))["name"]) == [
        "neurotransmitter", "neighborhood", "class", "subclass", "supertype", "cluster"]
    clusters = taxonomy_table(release, "Consensus-WMB-Macosko-10X", "cluster")
    assert clusters["label"].str.fullmatch(r"CS20251031_CLUS_\d{4}").all()
    assert clusters["cluster_alias"].str.fullmatch(r"\d+").all()
    numbers = clusters["label"].str[-4:].astype(int)
    assert (numbers != clusters["cluster_alias"].astype(int)).any(), "alias not the number"
    truth = truths["Consensus-WMB-Macosko-10X"]
    for level in ("supertype", "cluster"):
        colors = pd.Series(truth.colors[level])
        assert colors.duplicated().any(), f"{level}: colours are not unique per term"
    assert "NN" in truth.colors["neurotransmitter"]
    assert truth.terms["class"].str.fullmatch(r"\d{3} \S.*").all()
    directory = Path(release["root"], release["newer"]["Consensus-WMB-Macosko-10X"]["taxonomy"])
    per_neighborhood = sorted(directory.glob("*_cell_2d_embedding_coordinates.csv"))
    assert len(per_neighborhood) == truth.terms["neighborhood"].nunique() == 9
    assert truths["Consensus-WMB-AIBS-10X"].terms.equals(truth.terms), "one shared taxonomy"


def test_macosko_traps(release, truths):
    truth = truths["Consensus-WMB-Macosko-10X"]
    cells = truth.cells
    assert (cells.index == cells["library_label"] + "_" + cells["cell_barcode"]).all()
    raw = pd.read_csv(Path(release["root"], release["newer"][truth.dataset]["cells"]))
    assert raw["barcoded_cell_sample_label"].isna().all()
    regions = ["CB", "HPF", "HY", "Isocortex", "MB", "MY-Pons-BS", "OLF", "PAL", "STR", "TH"]
    assert sorted(truth.matrices) == sorted(f"Macosko-10X-{region}" for region in regions)
    assert list(truth.genes.columns) == ["gene_identifier", "gene_symbol"]
    wmb = read_csv(release["root"], "metadata/WMB-10X/20251031/gene.csv")
    ours, theirs = set(truth.genes["gene_identifier"]), set(wmb["gene_identifier"])
    assert len(ours) < len(theirs) and ours & theirs and ours - theirs


def test_aibs_reuses_the_wmb_matrices_and_genes(release, truths):
    truth = truths["Consensus-WMB-AIBS-10X"]
    data = manifest(release["root"], "20261031")
    assert set(data["file_listing"]["Consensus-WMB-AIBS-10X"]) == {"metadata"}
    assert "gene" not in data["file_listing"]["Consensus-WMB-AIBS-10X"]["metadata"]
    assert set(truth.cells["dataset_label"]) == {"WMB-10Xv2", "WMB-10Xv3"}
    assert set(truth.matrices) <= set(release["matrices"])
    assert list(truth.genes["gene_identifier"]) == list(
        read_csv(release["root"], GENES)["gene_identifier"])
    wmb = read_csv(release["root"], "metadata/WMB-10X/20251031/cell_metadata.csv")
    wmb = wmb[wmb["dataset_label"] != "WMB-10XMulti"].set_index("cell_label")
    only_aibs = truth.cells.index.difference(wmb.index)
    assert len(only_aibs) > 0 and len(wmb.index.difference(truth.cells.index)) > 0
    rows = source_rows(truth, only_aibs)
    assert list(rows.obs_names) == list(only_aibs), "in the WMB matrices all the same"
    assert len(truth.unassigned) > 0


def test_developing_mouse_traps(release, truths):
    name = "Developing-Mouse-Vis-Cortex-10X"
    truth = truths[name]
    clusters = taxonomy_table(release, name, "cluster").set_index("cluster_alias")
    long = taxonomy_table(release, name, "cluster_to_cluster_annotation_membership")
    leaf = long[long["cluster_annotation_term_set_name"] == "subcluster"].set_index(
        "cluster_alias")["cluster_annotation_term_label"]
    assert clusters["label"].str.fullmatch(r"CS20260131_SCLU_\d{4}").all()
    assert leaf.str.fullmatch(r"CS20260131_SCLU_\d{3}").all()
    assert (clusters["label"].str[-3:] == leaf.reindex(clusters.index).str[-3:]).all()
    assert truth.terms["subcluster"].str.fullmatch(r"\d{4}_.+_\d+_\d+").all()
    assert list(truth.genes.columns) == ["gene_identifier", "gene_symbol", "name",
                                         "mapped_ncbi_identifier", "comment"]  # fmt: skip
    assert set(truth.xy.index) == set(truth.assigned.index)


def test_hmba_subcortex_traps(release, truths):
    name = "HMBA-10xMultiome-Subcortex"
    truth = truths[name]
    assert truth.terms.index.str.fullmatch(r"cluster_\d+").all()
    data = manifest(release["root"], "20261031")["file_listing"]
    assert "gene" not in data[name]["metadata"]
    assert {"barcoded_cell_sample", "donor", "value_sets"} <= set(data[name]["metadata"])
    assert "library" not in data[name]["metadata"]
    assert truth.genes["gene_identifier"].str.fullmatch(r"NCBIGene:\d+").all()
    assert list(truth.genes.columns) == ["gene_identifier", "gene_symbol", "description",
                                         "molecular_type"]  # fmt: skip
    assert (truth.cells.index.str.fullmatch(r"[ACGT]{16}-P\d{4}_\d")).all()
    assert (truth.cells.index.str.split("-").str[1] == truth.cells["barcoded_cell_sample_label"]
            ).all()  # fmt: skip
    assert truth.annotations == ["Group_NT"] and truth.colors["Group_NT"]["GABA"] == "#ef3a5b"


# ---- taxonomy tables ------------------------------------------------------------------


@pytest.mark.parametrize("name", NEWER)
def test_taxonomy_tables_have_the_newer_shape(release, truths, name):
    long = taxonomy_table(release, name, "cluster_to_cluster_annotation_membership")
    assert list(long.columns) == LONG_COLUMNS, "no number_of_cells, no colour"
    terms = taxonomy_table(release, name, "cluster_annotation_term")
    assert list(terms.columns[: len(TERM_COLUMNS)]) == TERM_COLUMNS
    assert terms["color_hex_triplet"].str.fullmatch(r"#[0-9A-Fa-f]{6}").all()
    sets = taxonomy_table(release, name, "cluster_annotation_term_set")
    first = ["name", "label"] if name in NAME_FIRST else ["label", "name"]
    assert list(sets.columns) == [*first, "description", "order", "parent_term_set_label"]
    parent = dict(zip(sets["name"], sets["parent_term_set_label"], strict=True))
    label = dict(zip(sets["name"], sets["label"], strict=True))
    levels = DATASETS[name].levels
    assert [parent[level] for level in levels] == ["", *(label[lv] for lv in levels[:-1])]
    clusters = taxonomy_table(release, name, "cluster")
    assert list(clusters.columns) == ["label", "cluster_alias", "number_of_cells"]
    truth = truths[name]
    counted = truth.assigned["cluster_alias"].value_counts()
    if name.startswith("Consensus"):  # counts are over both halves
        both = pd.concat([truths[n].assigned for n in truths if n.startswith("Consensus")])
        counted = both["cluster_alias"].value_counts()
    assert counted.sort_index().equals(truth.cluster_sizes.sort_index().rename("count"))
    for level in truth.levels + truth.annotations:
        assert set(truth.terms[level]) <= set(truth.colors[level]), level
    for child, above in zip(truth.levels[1:], truth.levels, strict=False):
        assert (truth.terms.groupby(child)[above].nunique() == 1).all(), f"{child} nested"


# ---- matrices -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in NEWER if n != "Consensus-WMB-AIBS-10X"])
def test_matrices_are_gzip4_with_extra_cells_in_another_order(release, truths, name):
    truth = truths[name]
    for label, paths in truth.matrices.items():
        with h5py.File(paths["raw"], "r") as f:
            data = f["X/data"]
            assert (data.compression, data.compression_opts) == ("gzip", 4)
        raw = ad.read_h5ad(paths["raw"])
        mine = truth.cells.index[truth.cells["feature_matrix_label"] == label]
        assert raw.obs.index.name == "cell_label" and raw.obs_names.is_unique
        assert set(mine) < set(raw.obs_names), f"{label}: no extra cells"
        assert set(mine.intersection(truth.unassigned)) <= set(raw.obs_names)
        assert [c for c in raw.obs_names if c in set(mine)] != list(mine), "rows shuffled"
        assert list(raw.var_names) == list(truth.genes["gene_identifier"])
    some = truth.assigned.index[:30]
    counts = source_rows(truth, some).X.toarray().astype(np.float64)
    log2 = source_rows(truth, some, "log2").X.toarray()
    totals = np.where(counts.sum(axis=1, keepdims=True) > 0, counts.sum(axis=1, keepdims=True), 1)
    np.testing.assert_allclose(log2, np.log2(counts / totals * 1e6 + 1), rtol=1e-5)


def test_the_expected_obs_joins_levels_per_assigned_cell(truths):
    truth = truths["SEA-AD-Multiregion-10X"]
    obs = truth.expected_obs()
    assert list(obs.columns) == ["cluster_alias", "Class", "Subclass", "Supertype"]
    assert list(obs.index) == list(truth.assigned.index)
    one = obs.iloc[0]
    assert one["Supertype"] == truth.terms.loc[one["cluster_alias"], "Supertype"]


# ---- the demo -------------------------------------------------------------------------


def test_ensure_release_writes_a_newer_dataset_once(tmp_path):
    settings = {"release": "20260711", "n_cells": 150, "n_genes": 12, "seed": 0,
                "dataset": "SEA-AD-CaH-10X"}  # fmt: skip
    assert ensure_release(tmp_path, settings)
    assert "SEA-AD-CaH-10X" in manifest(tmp_path, "20260711")["file_listing"]
    assert not ensure_release(tmp_path, settings)
    with pytest.raises(AbcError, match="20260711 or later"):
        ensure_release(tmp_path / "old", {**settings, "release": "20250531"})


@pytest.mark.parametrize("name", NEWER)
def test_demo_config_samples_fewer_cells_than_its_release_holds(tmp_path, name):
    config = yaml.safe_load((PROJECT / "config" / f"demo-{name}.yaml").read_text())
    abc, synthetic = config["abc"], config["synthetic"]
    assert abc["dataset"] == name and synthetic["enabled"]
    assert abc["release"] == "latest", "the newer demos show release: latest"
    release = NEWEST
    assert abc["bucket"] == f"demo/{name}/bucket"
    for key, path in config["output"].items():
        assert path.startswith(f"demo/{name}/data"), key
    settings = {**synthetic, "release": release, "dataset": name}
    ensure_release(tmp_path, settings)
    truth = read_truth(tmp_path, name, release)
    assert config["sampling"]["target_cells"] < len(truth.assigned)
