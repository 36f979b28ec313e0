"""Profiles inferred from a release: each choice from the manifest and a few header lines,
and one line naming what cannot be decided. Releases are made here file by file, so each
test shows the shape it decides on; ``test_newer_datasets`` runs the real synthetic ones."""

import json

import pytest
import yaml

from abc_downsample.dataset.choose import run_dataset
from abc_downsample.dataset.infer import ReleaseReader, infer_profile
from abc_downsample.errors import AbcError, TransientError
from abc_downsample.release.manifest import Manifest

CELLS = "cell_label,cell_barcode,feature_matrix_label,dataset_label\nc1,AAA,M-1,NEW-10X\n"
MEMBERSHIP = "cell_label,cluster_alias,label\nc1,7,CS_7\n"
LONG = (
    "cluster_annotation_term_label,cluster_annotation_term_set_name,"
    "cluster_annotation_term_name,cluster_alias,cluster_annotation_term_set_label\n"
)
TERMS = "label,name,cluster_annotation_term_set_label,color_hex_triplet\n"
EMBEDDING = "cell_label,x,y\nc1,0.5,1.5\n"


def term_set(rows, parents=True) -> str:
    """A cluster_annotation_term_set table: rows of (label, name, order, parent label)."""
    head = "label,name,description,order" + (",parent_term_set_label" if parents else "")
    lines = [",".join([label, name, "", str(order)] + ([parent] if parents else []))
             for label, name, order, parent in rows]  # fmt: skip
    return "\n".join([head, *lines]) + "\n"


SEA_AD_SETS = term_set([("L0", "Class", 0, ""), ("L1", "Subclass", 1, "L0"),
                        ("L2", "Supertype", 2, "L1")])  # fmt: skip


def release(files: dict[str, str], version="20261031") -> ReleaseReader:
    """A release of ``files`` ({"<directory>/<table>": text}), read from memory."""
    listing, texts = {}, {}
    for name, text in files.items():
        directory, table = name.split("/")
        key = f"metadata/{directory}/{version}/{table}.csv"
        texts[key] = text.encode()
        entry = {"version": version, "relative_path": key, "size": len(text), "file_hash": ""}
        listing.setdefault(directory, {"metadata": {}})["metadata"][table] = {
            "files": {"csv": entry}
        }
    manifest = Manifest({"version": version, "file_listing": listing, "directory_listing": {}})
    read = lambda entry: texts[entry.relative_path]  # noqa: E731
    return ReleaseReader(manifest, read, read)


def newer(**changes) -> dict[str, str]:
    """The files of a dataset in the newer shape (SEA-AD's), with ``changes``."""
    files = {
        "NEW-10X/cell_metadata": CELLS,
        "NEW-10X/gene": "gene_identifier,gene_symbol\nG1,A\n",
        "NEW-taxonomy/cell_to_cluster_membership": MEMBERSHIP,
        "NEW-taxonomy/cluster_annotation_term_set": SEA_AD_SETS,
        "NEW-taxonomy/cluster_to_cluster_annotation_membership": LONG,
        "NEW-taxonomy/cluster_annotation_term": TERMS,
        "NEW-taxonomy/cell_2d_embedding_coordinates": EMBEDDING,
    }
    files.update(changes)
    return {k: v for k, v in files.items() if v is not None}


def test_the_newer_shape_is_inferred_whole():
    profile, why = infer_profile("NEW-10X", release(newer()))
    cells, taxonomy = profile["cells"], profile["taxonomy"]
    assert cells["table"] == {"directory": "NEW-10X", "name": "cell_metadata"}
    membership = {"directory": "NEW-taxonomy", "name": "cell_to_cluster_membership"}
    assert cells["membership"] == {**membership, "label": "cell_label"}
    assert cells["embedding"]["name"] == "cell_2d_embedding_coordinates"
    assert cells["umap"] == ["x", "y"] and cells["group"] == "cluster_alias"
    assert taxonomy == {"format": "long", "directory": "NEW-taxonomy",
                        "levels": ["Class", "Subclass", "Supertype"], "annotations": [],
                        "terms": "cluster_annotation_term"}  # fmt: skip
    assert profile["genes"] == {"directory": "NEW-10X", "name": "gene", "id": "gene_identifier"}
    assert profile["confidence"] == "inferred" and len(why) >= 6


def test_a_neurotransmitter_set_first_by_order_is_put_aside():
    """Consensus: neurotransmitter has order 0 and no parent; the chain starts elsewhere."""
    sets = term_set([("NEUR", "neurotransmitter", 0, ""), ("L0", "neighborhood", 1, ""),
                     ("L1", "class", 2, "L0"), ("L2", "cluster", 3, "L1")])  # fmt: skip
    profile, _ = infer_profile("NEW-10X", release(newer(**{
        "NEW-taxonomy/cluster_annotation_term_set": sets})))  # fmt: skip
    assert profile["taxonomy"]["levels"] == ["neighborhood", "class", "cluster"]
    assert profile["taxonomy"]["annotations"] == ["neurotransmitter"]


def test_without_parent_links_the_order_decides_and_the_neurotransmitter_is_aside():
    """WHB's shape: supercluster 0, cluster 1, subcluster 2, neurotransmitter 3."""
    rows = [("S3", "neurotransmitter", 3, ""), ("S0", "supercluster", 0, ""),
            ("S2", "subcluster", 2, ""), ("S1", "cluster", 1, "")]  # fmt: skip
    sets = term_set(rows, parents=False)
    profile, _ = infer_profile("NEW-10X", release(newer(**{
        "NEW-taxonomy/cluster_annotation_term_set": sets})))  # fmt: skip
    assert profile["taxonomy"]["levels"] == ["supercluster", "cluster", "subcluster"]
    assert profile["taxonomy"]["annotations"] == ["neurotransmitter"]


def test_the_group_key_of_the_cell_table_and_its_umap_when_there_is_no_membership():
    cells = "cell_label,feature_matrix_label,dataset_label,x,y,cluster_alias\nc1,M,NEW-10X,1,2,3\n"
    files = newer(**{"NEW-10X/cell_metadata": cells,
                     "NEW-taxonomy/cell_to_cluster_membership": None})  # fmt: skip
    profile, _ = infer_profile("NEW-10X", release(files))
    assert profile["cells"]["membership"] is None and profile["cells"]["embedding"] is None
    assert profile["cells"]["umap"] == ["x", "y"]


def test_the_taxonomy_sharing_most_words_with_the_name_wins():
    """WMB-10X -> WMB-taxonomy, not Consensus-WMB-integrated-taxonomy (fewer words shared
    in proportion); no taxonomy sharing a word: none."""
    consensus = "Consensus-WMB-integrated-taxonomy"
    files = {
        "WMB-10X/cell_metadata": CELLS.replace("dataset_label", "dataset_label,cluster_alias"),
        "WMB-taxonomy/cluster_annotation_term_set": SEA_AD_SETS,
        "WMB-taxonomy/cluster_to_cluster_annotation_membership": LONG,
        f"{consensus}/cluster_annotation_term_set": SEA_AD_SETS,
        f"{consensus}/cell_to_cluster_membership": MEMBERSHIP,
    }
    profile, _ = infer_profile("WMB-10X", release(files))
    assert profile["taxonomy"]["directory"] == "WMB-taxonomy"
    assert profile["cells"]["membership"] is None, "WMB's group key is in its cell table"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"OTHER-10X/cell_metadata": CELLS}, "no metadata/NEW-10X/cell_metadata.*OTHER-10X"),
        (newer(**{"NEW-10X/cell_metadata": "cell_label,x\nc1,1\n"}),
         "has no column.*feature_matrix_label.*is it a 10x dataset"),
        (newer(**{"NEW-taxonomy/cell_to_cluster_membership": None}),
         "cannot infer the group key of NEW-10X.*cells.group"),
        (newer(**{"NEW-taxonomy/cluster_annotation_term_set": None,
                  "NEW-taxonomy/cell_to_cluster_membership": MEMBERSHIP}),
         "cannot infer the levels"),
        ({**newer(), "New-Taxonomy-CCN2026/cell_to_cluster_membership": MEMBERSHIP},
         "cannot infer the taxonomy of NEW-10X.*match its name equally"),
    ],
)  # fmt: skip
def test_what_cannot_be_decided_is_one_line(files, message):
    with pytest.raises(AbcError, match=message) as err:
        infer_profile("NEW-10X", release(files))
    assert "\n" not in str(err.value)


def test_no_gene_table_means_the_matrices_own_genes():
    profile, why = infer_profile("NEW-10X", release(newer(**{"NEW-10X/gene": None})))
    assert profile["genes"] is None and any("matrices' own" in line for line in why)


# -- the run's profile: inferred once per release, recorded, printed when it changes ---------


@pytest.fixture
def mirror(tmp_path):
    """A local mirror (the bucket) of a newer-shape release, as ``abc`` sees it."""
    reader = release(newer())
    bucket = tmp_path / "bucket"
    for entry in reader.manifest.entries:
        (bucket / entry.relative_path).parent.mkdir(parents=True, exist_ok=True)
        (bucket / entry.relative_path).write_bytes(reader.head(entry))
    abc = {"bucket": str(bucket), "endpoint_url": None, "cache_dir": str(tmp_path / "cache"),
           "anonymous": True, "download": {"retries": 1, "max_concurrency": 2, "timeout_s": 5},
           "stream": {"max_concurrency": 2, "timeout_s": 5}}  # fmt: skip
    return reader.manifest, abc, tmp_path / "record" / "NEW-10X.yaml"


def test_the_profile_is_printed_whole_once_then_named(mirror):
    manifest, abc, record = mirror
    said = []
    first = run_dataset("NEW-10X", manifest, abc, record, True, said.append)
    assert "profile inferred from release 20261031" in said[0] and "levels:" in said[0]
    assert yaml.safe_load(record.read_text())["taxonomy"]["levels"] == list(first.taxonomy.levels)
    run_dataset("NEW-10X", manifest, abc, record, True, said.append)
    assert len(said) == 2 and "\n" not in said[1] and str(record) in said[1]
    job = run_dataset("NEW-10X", manifest, abc, record, False, said.append)
    assert job.raw == first.raw and len(said) == 2, "jobs read the record, silently"


def test_a_partial_profile_file_wins_over_the_inferred_keys(mirror, tmp_path):
    manifest, abc, record = mirror
    partial = tmp_path / "mine.yaml"
    genes = {"directory": "OTHER-10X", "name": "gene", "id": "gene_identifier"}
    partial.write_text(yaml.safe_dump({"name": "NEW-10X", "confidence": "seen", "genes": genes}))
    dataset = run_dataset(str(partial), manifest, abc, record, True, lambda _: None)
    assert dataset.genes.table.directory == "OTHER-10X" and dataset.confidence == "seen"
    assert dataset.taxonomy.levels == ("Class", "Subclass", "Supertype"), "the rest inferred"


def test_offline_the_last_recorded_profile_is_used_with_a_warning(mirror, monkeypatch):
    manifest, abc, record = mirror
    run_dataset("NEW-10X", manifest, abc, record, True, lambda _: None)

    def offline(*args, **kwargs):
        raise TransientError("could not read it: connection refused")

    monkeypatch.setattr("abc_downsample.dataset.choose.infer_profile", offline)
    said = []
    dataset = run_dataset("NEW-10X", manifest, abc, record, True, said.append)
    assert dataset.name == "NEW-10X" and said[0].startswith("warning: cannot read the release")
    assert json.dumps(dataset.raw)
