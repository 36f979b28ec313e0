"""The synthetic release keeps the promises of the real bucket's format (docs: abc_layout)."""

import json
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PROJECT, SYNTHETIC_ARGS, md5
from s3_server import BUCKET, unsigned_client

from abc_downsample.config_check import default_config
from abc_downsample.dataset.profile import load_dataset
from abc_downsample.demo.release import ensure_release, write_release
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import Manifest, manifest_key

CELLS = "metadata/WMB-10X/20241115/cell_metadata.csv"
GENES = "metadata/WMB-10X/20241115/gene.csv"
PIVOTED = (
    "metadata/WMB-taxonomy/20231215/views/cluster_to_cluster_annotation_membership_pivoted.csv"
)
COLORS = "metadata/WMB-taxonomy/20231215/views/cluster_to_cluster_annotation_membership_color.csv"
REAL_CELL_COLUMNS = [
    "cell_label", "cell_barcode", "barcoded_cell_sample_label", "library_label",
    "feature_matrix_label", "entity", "brain_section_label", "library_method",
    "region_of_interest_acronym", "donor_label", "donor_genotype", "donor_sex",
    "dataset_label", "x", "y", "cluster_alias", "abc_sample_id",
]  # fmt: skip


def read_csv(release, key):
    return pd.read_csv(Path(release["root"]) / key, keep_default_na=False)


def matrix_files(release):
    """(label, variant, path) of every h5ad in the manifest."""
    root = Path(release["root"])
    return [
        (label, variant, root / info[variant])
        for label, info in release["matrices"].items()
        for variant in ("raw", "log2")
    ]


@pytest.fixture(scope="module")
def cells(synthetic_release):
    return read_csv(synthetic_release, CELLS)


@pytest.fixture(scope="module")
def manifest(synthetic_release):
    return json.loads((Path(synthetic_release["root"]) / synthetic_release["manifest"]).read_text())


def test_cell_metadata_has_the_real_columns_and_values(cells, synthetic_release):
    assert list(cells.columns) == REAL_CELL_COLUMNS
    assert len(cells) == synthetic_release["n_cells"]
    assert cells["cell_label"].is_unique
    assert cells["cell_barcode"].duplicated().any(), "barcodes must repeat across samples"
    assert (
        cells["cell_label"] == cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"]
    ).all()
    assert (cells["brain_section_label"] == "").all()
    assert set(cells["entity"]) == {"cell"}
    expected_method = {"WMB-10Xv2": "10Xv2", "WMB-10Xv3": "10Xv3", "WMB-10XMulti": "10xRSeq_Mult"}
    assert set(cells["dataset_label"]) == set(expected_method)
    assert (cells["library_method"] == cells["dataset_label"].map(expected_method)).all()
    pairs = zip(cells["feature_matrix_label"], cells["dataset_label"], strict=True)
    assert all(matrix.startswith(dataset) for matrix, dataset in pairs)
    assert pd.api.types.is_integer_dtype(cells["cluster_alias"])
    assert {"HPF", "TH", "MB"} <= set(cells["region_of_interest_acronym"])


def test_cluster_sizes_are_heavy_tailed_with_the_edge_sizes(cells):
    sizes = cells["cluster_alias"].value_counts()
    for edge in (1, 49, 50, 51):
        assert (sizes == edge).any(), f"no cluster of exactly {edge} cells"
    assert (sizes < 50).sum() >= 30, "many small clusters"
    assert (sizes > 200).sum() >= 3, "a few big clusters"
    files_per_cluster = cells.groupby("cluster_alias")["feature_matrix_label"].nunique()
    assert (files_per_cluster >= 3).any()
    small_and_split = files_per_cluster[sizes[sizes < 50].index]
    assert (small_and_split >= 2).any(), "a small cluster spread over two files"


def test_taxonomy_is_nested_and_keeps_the_literal_na(cells, synthetic_release):
    pivoted = read_csv(synthetic_release, PIVOTED)
    assert list(pivoted.columns) == [
        "cluster_alias", "neurotransmitter", "class", "subclass", "supertype", "cluster"
    ]  # fmt: skip
    assert pivoted["cluster_alias"].is_unique
    assert "NA" in set(pivoted["neurotransmitter"])
    assert set(cells["cluster_alias"]) <= set(pivoted["cluster_alias"])
    for child, parent in (
        ("cluster", "supertype"),
        ("supertype", "subclass"),
        ("subclass", "class"),
    ):
        assert (pivoted.groupby(child)[parent].nunique() == 1).all(), f"{child} in one {parent}"
    assert pivoted["class"].nunique() < pivoted["subclass"].nunique() < pivoted["cluster"].nunique()
    assert pivoted["class"].str.match(r"^\d\d \S").all()
    assert pivoted["cluster"].str.match(r"^\d{4} \S").all()
    colors = read_csv(synthetic_release, COLORS)
    assert list(colors.columns) == ["cluster_alias"] + [
        f"{level}_color"
        for level in ("neurotransmitter", "class", "subclass", "supertype", "cluster")
    ]
    assert colors.drop(columns="cluster_alias").stack().str.match(r"^#[0-9A-F]{6}$").all()


def test_gene_table_matches_every_matrix_var(synthetic_release):
    genes = read_csv(synthetic_release, GENES)
    assert list(genes.columns) == [
        "gene_identifier", "gene_symbol", "name", "mapped_ncbi_identifier", "comment"
    ]  # fmt: skip
    assert genes["gene_identifier"].str.match(r"^ENSMUSG\d{11}$").all()
    for _, _, path in matrix_files(synthetic_release):
        var = ad.read_h5ad(path, backed="r").var
        assert var.index.name == "gene_identifier"
        assert list(var.index) == list(genes["gene_identifier"])
        assert list(var["gene_symbol"]) == list(genes["gene_symbol"])


def test_manifests_list_every_file_with_size_and_md5(synthetic_release, manifest):
    root = Path(synthetic_release["root"])
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {
        "releases/20250531/manifest.json",
        "releases/20240330/manifest.json",
    }
    listed = {}
    for directory in manifest["file_listing"].values():
        for kind, names in directory.items():
            for entry_group in names.values():
                shapes = entry_group.values() if kind == "expression_matrices" else [entry_group]
                for shape in shapes:
                    for entry in shape["files"].values():
                        listed[entry["relative_path"]] = entry
    assert set(listed) == on_disk
    for path, entry in listed.items():
        assert entry["size"] == (root / path).stat().st_size
        assert entry["file_hash"] == md5(root / path)
        assert entry["url"].endswith("amazonaws.com/" + path)
    assert manifest["resource_uri"] == "s3://allen-brain-cell-atlas/"
    assert manifest["version"] == "20250531"
    matrix = manifest["file_listing"]["WMB-10Xv3"]["expression_matrices"]["WMB-10Xv3-MB"]
    assert set(matrix) == {"raw", "log2"}
    directory = manifest["directory_listing"]["WMB-10X"]["directories"]["metadata"]
    assert directory["relative_path"] == "metadata/WMB-10X/20241115"
    assert directory["view_link"].endswith("index.html#metadata/WMB-10X/20241115/")


def test_the_older_release_sorts_first(synthetic_release):
    releases = sorted(p.name for p in (Path(synthetic_release["root"]) / "releases").iterdir())
    assert releases == ["20240330", "20250531"]
    old = json.loads(
        (Path(synthetic_release["root"]) / "releases/20240330/manifest.json").read_text()
    )
    assert old["version"] == "20240330"


def test_matrices_hold_extra_cells_in_another_order(cells, synthetic_release):
    for label, variant, path in matrix_files(synthetic_release):
        adata = ad.read_h5ad(path)
        mine = cells.loc[cells["feature_matrix_label"] == label, "cell_label"]
        labels = adata.obs.index
        assert labels.name == "cell_label" and labels.is_unique
        assert set(mine) < set(labels), f"{label}: metadata cells missing or no extra cells"
        in_file_order = [c for c in labels if c in set(mine)]
        assert in_file_order != list(mine), f"{label}: rows not shuffled"
        assert list(adata.obs.columns) == [
            "cell_barcode", "library_label", "anatomical_division_label"
        ]  # fmt: skip
        assert set(adata.uns) == {"normalization", "parent", "parent_layer", "parent_rows"}
        assert adata.X.format == "csr" and adata.X.dtype == np.float32
        assert (np.diff(adata.X.indptr) == 0).any(), f"{label}-{variant}: no empty row"


def test_raw_is_counts_and_log2_is_log2_cpm_plus_one(synthetic_release):
    root = Path(synthetic_release["root"])
    for info in synthetic_release["matrices"].values():
        raw = ad.read_h5ad(root / info["raw"])
        log2 = ad.read_h5ad(root / info["log2"])
        assert list(raw.obs.index) == list(log2.obs.index)
        assert np.array_equal(raw.X.data, np.round(raw.X.data)) and raw.X.data.min() >= 1
        counts = raw.X.toarray().astype(np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        expected = np.log2(counts / np.where(totals > 0, totals, 1) * 1e6 + 1)
        np.testing.assert_allclose(log2.X.toarray(), expected, rtol=1e-6)


def test_both_storage_layouts_exist(synthetic_release):
    layouts = set()
    for label, _, path in matrix_files(synthetic_release):
        with h5py.File(path, "r") as f:
            data, indices = f["X/data"], f["X/indices"]
            assert f["X"].attrs["encoding-type"] == "csr_matrix"
            assert indices.dtype == np.int32
            layout = "chunked" if data.chunks else "contiguous"
            assert (indices.chunks is not None) == (layout == "chunked")
            if layout == "chunked":
                assert data.compression == "gzip" and data.chunks[0] < data.shape[0]
            assert layout == synthetic_release["matrices"][label]["storage"]
            layouts.add(layout)
    assert layouts == {"contiguous", "chunked"}


def test_same_arguments_give_byte_identical_files(tmp_path, synthetic_release):
    again = write_release(tmp_path / "again", **SYNTHETIC_ARGS)
    assert again["files"] == synthetic_release["files"]
    root = Path(synthetic_release["root"])
    for key in ("releases/20250531/manifest.json", "releases/20240330/manifest.json"):
        assert md5(tmp_path / "again" / key) == md5(root / key)
    other = write_release(tmp_path / "other", **{**SYNTHETIC_ARGS, "seed": 1})
    assert other["files"][CELLS]["md5"] != synthetic_release["files"][CELLS]["md5"]


def test_smallest_allowed_release_is_consistent(tmp_path):
    info = write_release(tmp_path, n_cells=100, n_genes=10, old_release="20200101")
    cells = read_csv(info, CELLS)
    assert len(cells) == 100
    assert cells["cluster_alias"].value_counts().to_dict() == info["cluster_sizes"]
    assert not list(tmp_path.rglob(".*tmp*")), "temporary files left behind"


@pytest.mark.parametrize(
    "kwargs",
    [{"n_cells": 99}, {"n_genes": 9}, {"release": "latest"}, {"old_release": "20990101"}],
)
def test_bad_arguments_raise_one_line_errors(tmp_path, kwargs):
    with pytest.raises(AbcError) as err:
        write_release(tmp_path, **kwargs)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir()), "nothing written on bad arguments"


def test_unsigned_client_reads_the_release_from_moto(s3_endpoint, synthetic_release):
    client = unsigned_client(s3_endpoint)
    root = Path(synthetic_release["root"])
    key = synthetic_release["matrices"]["WMB-10Xv3-MB"]["raw"]
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == (root / key).read_bytes()
    part = client.get_object(Bucket=BUCKET, Key=key, Range="bytes=100-199")["Body"].read()
    assert part == (root / key).read_bytes()[100:200]
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="releases/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "releases/20240330/manifest.json",
        "releases/20250531/manifest.json",
    ]


PROFILED = {"WMB-10X", "WHB-10Xv3", "Zeng-Aging-Mouse-10Xv3", "HMBA-10xMultiome-BG",
            "ASAP-PMDBS-10X"}  # fmt: skip


def load_dataset_name(path: Path) -> str:
    return (yaml.safe_load(path.read_text())["abc"] or {}).get("dataset", "WMB-10X")


def test_ensure_release_writes_once_and_again_when_settings_change(tmp_path):
    """The demo's release is made while the workflow is read: only when missing or when
    its settings changed."""
    settings = {"release": "20250531", "n_cells": 300, "n_genes": 12, "seed": 3}
    assert ensure_release(tmp_path, settings)
    manifest = tmp_path / "releases/20250531/manifest.json"
    assert json.loads(manifest.read_text())["version"] == "20250531"
    assert len(read_csv({"root": tmp_path}, CELLS)) == 300
    written = manifest.stat().st_mtime_ns
    assert not ensure_release(tmp_path, settings)
    assert manifest.stat().st_mtime_ns == written
    assert ensure_release(tmp_path, {**settings, "n_cells": 400})
    assert len(read_csv({"root": tmp_path}, CELLS)) == 400


def demo_config(name: str) -> dict:
    """A demo's config as a run reads it: config.yaml's defaults under the demo's keys."""
    demo = yaml.safe_load((PROJECT / "config" / name).read_text())
    config = default_config()
    for block, values in demo.items():
        config[block] = {**config[block], **values}
    return config


# the demos of the 2025 datasets (the newer ones: test_demo_newer.py, on their own shapes)
DEMOS = sorted(p.name for p in (PROJECT / "config").glob("demo*.yaml")
               if load_dataset_name(p) in PROFILED)  # fmt: skip


@pytest.mark.parametrize("demo", DEMOS)
def test_each_demo_builds_what_its_config_says_and_shows_sampling(demo, tmp_path):
    """The synthetic block's cells and genes are the demo dataset's (issue 22, finding 8:
    the WHB demo said 6,000 x 120 and built 3,000 x 80), and the demo's population is
    larger than its target, so the demo shows sampling (the HMBA demo took every cell)."""
    config = demo_config(demo)
    dataset = load_dataset(config["abc"]["dataset"])
    synthetic, release = config["synthetic"], config["abc"]["release"]
    ensure_release(tmp_path, {**synthetic, "release": release, "dataset": dataset.name})
    manifest = Manifest.load(tmp_path / manifest_key(release))
    table = dataset.cells.table
    cells = pd.read_csv(tmp_path / manifest.metadata_file(table.directory, table.name)
                        .relative_path, dtype=str, keep_default_na=False)  # fmt: skip
    assert len(cells) == synthetic["n_cells"]
    population = cells
    for column, values in config["sampling"].get("filters", {}).items():
        population = population[population[column].isin(values)]
    assert len(population) > config["sampling"]["target_cells"]
    matrix = population[dataset.cells.matrix].iloc[0]
    with h5py.File(tmp_path / manifest.matrix_file(matrix, "raw").relative_path) as h5file:
        assert h5file["X"].attrs["shape"][1] == synthetic["n_genes"]
