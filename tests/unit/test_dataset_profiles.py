"""Dataset profiles: every shipped profile is valid and its files are where the real
release manifest (20250531, byte for byte) lists them; a bad profile fails in one line
naming the key."""


import pandas as pd
import pytest

from abc_downsample.dataset.choose import is_whole
from abc_downsample.dataset.profile import (
    DATASETS_DIR,
    dataset_from_dict,
    load_dataset,
    read_profile,
)
from abc_downsample.errors import AbcError
from abc_downsample.project import SHIPPED_RELEASES
from abc_downsample.release.manifest import Manifest, manifest_key
from abc_downsample.sampling.sample import sample_cells

REAL_MANIFEST = SHIPPED_RELEASES / manifest_key("20250531")
ALL_PROFILES = sorted(p.stem for p in DATASETS_DIR.glob("*.yaml"))
# whole profiles (the 2025 datasets); the others are partial: the release gives the rest
PROFILES = [n for n in ALL_PROFILES if is_whole(read_profile(DATASETS_DIR / f"{n}.yaml"))]
PARTIAL = {"Consensus-WMB-AIBS-10X", "HMBA-10xMultiome-Subcortex"}
# feature_matrix_labels of each dataset in the real release
MATRICES = {
    "WMB-10X": 24,
    "WHB-10Xv3": 2,
    "Zeng-Aging-Mouse-10Xv3": 1,
    "HMBA-10xMultiome-BG": 3,
    "ASAP-PMDBS-10X": 1,
}


def test_the_five_datasets_have_profiles_and_two_newer_ones_partial_profiles():
    assert set(PROFILES) == set(MATRICES)
    assert set(ALL_PROFILES) - set(PROFILES) == PARTIAL


@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_partial_profiles_name_only_what_inference_cannot_decide(name):
    raw = read_profile(DATASETS_DIR / f"{name}.yaml")
    assert set(raw) == {"name", "title", "confidence", "genes"} and raw["name"] == name
    genes = raw["genes"]  # another dataset's gene table, listed in the 20250531 release
    assert Manifest.load(REAL_MANIFEST).metadata_file(genes["directory"], genes["name"]).size


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_file_resolves_in_the_real_manifest(name):
    dataset = load_dataset(name)
    manifest = Manifest.load(REAL_MANIFEST)
    tables = [dataset.cells.table, *dataset.taxonomy.tables(), dataset.genes.table]
    tables += [dataset.genes.table_for(m) for m in dataset.genes.by_matrix]
    if dataset.cells.membership:
        tables.append(dataset.cells.membership)
    for table in tables:
        assert manifest.metadata_file(table.directory, table.name).size > 0, table
    # the matrices' directories: the dataset's own (WMB: WMB-10Xv2, WMB-10Xv3, WMB-10XMulti)
    matrices = {
        e.name
        for e in manifest.entries
        if e.kind == "expression_matrices" and e.variant == "raw"
        and (e.directory == name or (name == "WMB-10X" and e.directory.startswith(name)))
    }  # fmt: skip
    assert len(matrices) == MATRICES[name], sorted(matrices)
    for matrix in dataset.genes.by_matrix:
        assert manifest.matrix_file(matrix, "raw").size > 0


def test_an_unknown_dataset_names_the_known_ones():
    with pytest.raises(AbcError, match="abc.dataset 'WMB-11X' has no profile file.*WHB-10Xv3"):
        load_dataset("WMB-11X")


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p["cells"].pop("group"), "cells"),
        (lambda p: p["taxonomy"].update(format="tree"), "taxonomy.format"),
        (lambda p: p["cells"].update(colour="x"), "cells"),
        (lambda p: p["taxonomy"].update(format="pivoted"), "taxonomy.terms"),
    ],
)
def test_a_bad_profile_fails_in_one_line_naming_the_key(edit, key):
    raw = load_dataset("WMB-10X").raw
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    edit(raw)
    with pytest.raises(AbcError) as err:
        dataset_from_dict(raw, "mine.yaml")
    message = str(err.value)
    assert "\n" not in message and f"key {key}" in message and "mine.yaml" in message


def test_a_users_profile_file_is_taken_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        (DATASETS_DIR / "WHB-10Xv3.yaml").read_text().replace("WHB-10Xv3\n", "Mine\n", 1)
    )
    dataset = load_dataset(str(path))
    assert dataset.cells.table.directory == "WHB-10Xv3" and dataset.source == str(path)


def test_a_column_not_where_the_profile_says_names_the_profile_key(tmp_path):
    cells = tmp_path / "cell_metadata.csv"
    cells.write_text("cell_label,feature_matrix_label,dataset_label,cluster\nA,m,d,1\n")
    with pytest.raises(AbcError) as err:
        sample_cells(cells, [], {"target_cells": 1}, load_dataset("ASAP-PMDBS-10X"))
    message = str(err.value)
    assert "'cluster_label'" in message and "fix cells.group" in message
    assert "ASAP-PMDBS-10X.yaml" in message and "\n" not in message


def test_a_level_missing_from_the_term_sets_names_taxonomy_levels(tmp_path):
    term_set = tmp_path / "cluster_annotation_term_set.csv"
    term_set.write_text("label,name,description,order\nS0,Neighborhood,n,0\n")
    membership = tmp_path / "cluster_to_cluster_annotation_membership.csv"
    membership.write_text(
        "cluster_alias,cluster_annotation_term_set_name,cluster_annotation_term_name\n"
        "1,Neighborhood,N1\n"
    )
    from abc_downsample.metadata.taxonomy import read_taxonomy

    with pytest.raises(AbcError, match="names no term set 'neighborhood'.*fix taxonomy.levels"):
        read_taxonomy([term_set, membership], load_dataset("HMBA-10xMultiome-BG"))


def test_each_species_has_its_gene_table():
    dataset = load_dataset("HMBA-10xMultiome-BG")
    assert dataset.genes.table_for("HMBA-10xMultiome-BG-Macaque").name == "macaque_gene"


def test_a_sample_across_species_says_how_to_take_one(tmp_path):
    """Human and macaque matrices have different genes: no one AnnData holds both."""
    from abc_downsample.sampling.sample import _check_one_gene_table

    dataset = load_dataset("HMBA-10xMultiome-BG")
    cells = pd.DataFrame(
        {"feature_matrix_label": ["HMBA-10xMultiome-BG-Human", "HMBA-10xMultiome-BG-Macaque"]}
    )
    with pytest.raises(AbcError) as err:
        _check_one_gene_table(cells, dataset)
    message = str(err.value)
    assert "different genes" in message and "\n" not in message
    assert "sampling.filters {feature_matrix_label: [HMBA-10xMultiome-BG-Human]}" in message
    _check_one_gene_table(cells.iloc[:1], dataset)  # one species: fine
