"""Readers of the cell, gene and taxonomy tables, on small real CSV files."""


import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from abc_downsample.errors import AbcError
from abc_downsample.metadata import tables as metadata
from abc_downsample.metadata.tables import CELL_METADATA_COLUMNS
from abc_downsample.metadata.taxonomy import read_pivoted

COLUMNS = list(CELL_METADATA_COLUMNS)


def cell_table(n: int, seed: int = 0) -> pd.DataFrame:
    """A cell table with the real columns; region 'NA' is a value, brain_section empty."""
    rng = np.random.default_rng(seed)
    barcodes = ["".join("ACGT"[(i >> (2 * k)) & 3] for k in range(16)) for i in range(n)]
    library = rng.integers(100, 110, n)
    return pd.DataFrame(
        {
            "cell_label": [f"{b}-{lib}_A01" for b, lib in zip(barcodes, library, strict=True)],
            "cell_barcode": barcodes,
            "barcoded_cell_sample_label": [f"{lib}_A01" for lib in library],
            "library_label": [f"L8TX_{lib}" for lib in library],
            "feature_matrix_label": rng.choice(["WMB-10Xv3-TH", "WMB-10Xv2-HPF"], n),
            "entity": "cell",
            "brain_section_label": "",
            "library_method": rng.choice(["10Xv2", "10Xv3"], n),
            "region_of_interest_acronym": rng.choice(["TH", "HPF", "NA"], n),
            "donor_label": "Snap25-IRES2-Cre;Ai14-550850",
            "donor_genotype": "Ai14(RCL-tdT)/wt",
            "donor_sex": rng.choice(["F", "M"], n),
            "dataset_label": "WMB-10Xv3",
            "x": rng.normal(size=n).round(6),
            "y": rng.normal(size=n).round(6),
            "cluster_alias": rng.integers(1, 40, n),
            "abc_sample_id": [f"uuid-{i}" for i in range(n)],
        }
    )


@pytest.fixture
def cells_csv(tmp_path):
    frame = cell_table(3000)
    path = tmp_path / "cell_metadata.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few kB, so that the 3000-row test tables span many streamed batches."""
    monkeypatch.setattr(metadata, "BLOCK_SIZE", 8 << 10)
    monkeypatch.setattr(metadata, "INFER_BLOCK_SIZE", 8 << 10)


def test_read_cell_columns_returns_only_the_asked_columns(cells_csv, small_blocks):
    path, frame = cells_csv
    got = metadata.read_cell_columns(path, ["cell_label", "library_method", "cluster_alias"])
    assert list(got.columns) == ["cell_label", "library_method", "cluster_alias"]
    assert got["cell_label"].tolist() == frame["cell_label"].tolist()
    assert got["cluster_alias"].tolist() == frame["cluster_alias"].tolist()
    assert got["library_method"].astype(str).tolist() == frame["library_method"].tolist()


def test_read_cell_columns_is_compact(cells_csv, small_blocks):
    path, _ = cells_csv
    got = metadata.read_cell_columns(path, ["cell_label", "feature_matrix_label"])
    assert isinstance(got["feature_matrix_label"].dtype, pd.CategoricalDtype)
    assert not isinstance(got["cell_label"].dtype, pd.CategoricalDtype)  # unique: no dict
    assert got["cell_label"].dtype.storage == "pyarrow"


def test_read_cell_columns_keeps_na_text_and_empty_as_missing(cells_csv, small_blocks):
    path, frame = cells_csv
    got = metadata.read_cell_columns(path, ["region_of_interest_acronym", "brain_section_label"])
    assert (got["region_of_interest_acronym"] == "NA").sum() == (
        frame["region_of_interest_acronym"] == "NA"
    ).sum()
    assert got["region_of_interest_acronym"].notna().all()
    assert got["brain_section_label"].isna().all()


def test_a_column_empty_in_the_first_block_may_be_filled_later(tmp_path, small_blocks):
    frame = cell_table(3000)
    frame.loc[2900:, "brain_section_label"] = "C57BL6J-638850.01"
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    got = metadata.read_cell_columns(path, ["brain_section_label"])["brain_section_label"]
    assert got.isna().sum() == 2900
    assert set(got.dropna().astype(str)) == {"C57BL6J-638850.01"}
    once = metadata.read_cell_table_once(path, ["cell_label"], "cell_label")
    picked = once.take(np.array([0, 2950])).column("brain_section_label").to_pylist()
    assert picked == [None, "C57BL6J-638850.01"]


def test_missing_column_is_one_line_error_naming_file(cells_csv):
    path, _ = cells_csv
    with pytest.raises(AbcError, match="cell_metadata.csv lacks column.*'supertype'") as err:
        metadata.read_cell_columns(path, ["cell_label", "supertype"])
    assert "\n" not in str(err.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(AbcError, match="does not exist"):
        metadata.read_cell_columns(tmp_path / "nope.csv", ["cell_label"])


def test_ragged_csv_is_an_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("cell_label,cluster_alias\na,1\nb,2,3\n")
    with pytest.raises(AbcError, match="ragged.csv is not a readable CSV.*delete it and rerun"):
        metadata.read_cell_columns(path, ["cell_label", "cluster_alias"])
    with pytest.raises(AbcError, match="not a readable CSV"):
        metadata.read_cell_table_once(path, ["cell_label"], "cell_label")


def test_a_bad_value_in_a_later_block_is_an_error(tmp_path, small_blocks):
    frame = cell_table(3000)
    frame["cluster_alias"] = frame["cluster_alias"].astype(str)
    frame.loc[2990, "cluster_alias"] = "garbage"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(AbcError, match="bad.csv is not a readable CSV"):
        metadata.read_cell_columns(path, ["cell_label", "cluster_alias"])


def test_truncated_file_is_an_error(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(b"")
    with pytest.raises(AbcError, match="cut.csv"):
        metadata.read_cell_columns(path, ["cell_label"])


def test_read_once_keeps_the_asked_columns_and_takes_the_others_later(cells_csv, small_blocks):
    """One pass: the asked columns in memory; the full rows of any cells taken later, as
    reading every column would give them (from the rows' own lines)."""
    path, frame = cells_csv
    whole = metadata.read_cell_table(path)
    rows = np.array([0, 5, 1500, 2998, 2999])  # across many 8 kB blocks
    once = metadata.read_cell_table_once(path, ["cluster_alias", "cell_label"], "cell_label")
    assert once.kept.column_names == ["cluster_alias", "cell_label"]
    assert once.kept.num_rows == len(frame)
    taken = once.take(rows)
    assert once.take(np.array([], dtype=np.int64)).num_rows == 0
    assert taken.column_names == COLUMNS  # the file's order
    assert taken.schema == whole.schema and taken.to_pylist() == whole.take(rows).to_pylist()
    assert taken.column("cell_label").to_pylist() == frame["cell_label"].iloc[rows].tolist()


def test_cell_rows_file_gives_the_rows_in_the_asked_order(cells_csv, tmp_path):
    path, frame = cells_csv
    rows = tmp_path / "rows.arrow"
    metadata.write_cell_rows(metadata.read_cell_table(path).take([7, 3, 9, 3]), rows)
    labels = frame["cell_label"].iloc[[9, 3, 7]].tolist()
    got = metadata.read_cell_rows(rows, labels, "cell_label")
    assert got.column("cell_label").to_pylist() == labels  # a label twice: once
    assert got.column("x").to_pylist() == frame["x"].iloc[[9, 3, 7]].tolist()
    assert got.column_names == COLUMNS


def test_cell_rows_file_missing_or_stale_is_a_one_line_error(cells_csv, tmp_path):
    path, frame = cells_csv
    rows = tmp_path / "rows.arrow"
    with pytest.raises(AbcError, match="rows.arrow does not exist: rerun the workflow"):
        metadata.read_cell_rows(rows, ["a"], "cell_label")
    metadata.write_cell_rows(metadata.read_cell_table(path).take([0, 1]), rows)
    labels = [frame["cell_label"].iloc[0], "GHOST-1", "GHOST-2"]
    with pytest.raises(AbcError, match=r"2 cell\(s\) .* not in .*'GHOST-1'.*stale") as err:
        metadata.read_cell_rows(rows, labels, "cell_label")
    assert "\n" not in str(err.value)
    rows.write_bytes(b"not arrow")
    with pytest.raises(AbcError, match="rows.arrow is not readable .*delete it and rerun"):
        metadata.read_cell_rows(rows, labels, "cell_label")


def test_read_taxonomy_keeps_na_as_text(tmp_path):
    path = tmp_path / "pivoted.csv"
    path.write_text(
        "cluster_alias,neurotransmitter,class,subclass,supertype,cluster\n"
        "1,NA,01 IT-ET Glut,001 CLA-EPd-CTX Car3 Glut,0001 CLA Glut_1,0001 CLA Glut_1\n"
        "2,Glut,01 IT-ET Glut,001 CLA-EPd-CTX Car3 Glut,0001 CLA Glut_1,0002 CLA Glut_1\n"
    )
    taxonomy = read_pivoted(path)
    assert taxonomy.index.name == "cluster_alias"
    assert taxonomy.index.tolist() == [1, 2]
    assert taxonomy.loc[1, "neurotransmitter"] == "NA"
    assert taxonomy.loc[2, "cluster"] == "0002 CLA Glut_1"


def test_read_taxonomy_duplicate_alias_is_an_error(tmp_path):
    path = tmp_path / "pivoted.csv"
    path.write_text("cluster_alias,class\n1,a\n1,b\n")
    with pytest.raises(AbcError, match="lists cluster_alias '1' more than once"):
        read_pivoted(path)


def test_read_taxonomy_without_alias_column_is_an_error(tmp_path):
    path = tmp_path / "pivoted.csv"
    path.write_text("alias,class\n1,a\n")
    with pytest.raises(AbcError, match="lacks column.*'cluster_alias'"):
        read_pivoted(path)


def test_read_genes(tmp_path):
    path = tmp_path / "gene.csv"
    path.write_text(
        "gene_identifier,gene_symbol,name,mapped_ncbi_identifier,comment\n"
        "ENSMUSG00000051951,Xkr4,X-linked Kx blood group related 4,NCBIGene:497097,\n"
        "ENSMUSG00000089699,Gm1992,predicted gene 1992,,NA\n"
    )
    genes = metadata.read_genes(path)
    assert genes.index.name == "gene_identifier"
    assert genes.loc["ENSMUSG00000051951", "gene_symbol"] == "Xkr4"
    assert pd.isna(genes.loc["ENSMUSG00000051951", "comment"])
    assert genes.loc["ENSMUSG00000089699", "comment"] == "NA"


def test_hash_labels_depends_on_the_label_only():
    import pyarrow as pa

    from abc_downsample.sampling.hashing import hash_labels

    chunked = pa.chunked_array([["AAAC-1", "bb"], ["ccc", "AAAC-1"]])
    hashes = hash_labels(chunked)
    assert hashes[0] == hashes[3] and len(set(hashes[:3].tolist())) == 3
    assert hash_labels(pa.array(["ccc"]))[0] == hashes[2]
    assert hash_labels(["ccc"], seed=1)[0] != hashes[2]


def jobs_table(path, donor=False):
    """SEA-AD's alignment_job_id: integers for 5,000 rows, then 40-hex hashes."""
    rows = ["cell_label," + ("donor," if donor else "") + "alignment_job_id,umi_count"]
    for i in range(6000):
        job = str(1_000_000_000 + i) if i < 5000 else f"{i:040x}"
        rows.append(f"c{i}," + (f"d{i % 3}," if donor else "") + f"{job},{i}.0")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_column_that_turns_from_numbers_to_text_is_read_as_text(tmp_path, small_blocks):
    """SEA-AD's alignment_job_id: integers for many rows, then 40-hex hashes."""
    path = jobs_table(tmp_path / "cell_metadata.csv")
    table = metadata.read_cell_table(path)
    jobs = table.column("alignment_job_id").to_pylist()
    assert jobs[0] == "1000000000" and jobs[-1] == f"{5999:040x}"
    assert table.column("umi_count").type == pa.float64(), "other columns keep their type"
    sampled = metadata.read_cell_table_once(path, ["cell_label"], "cell_label")
    taken = sampled.take(np.array([0, 5999]))
    assert taken.column("alignment_job_id").to_pylist() == ["1000000000", f"{5999:040x}"]


def test_a_mistyped_column_read_along_is_found_by_name(tmp_path, small_blocks):
    """Arrow numbers the failing column in the file, not among the columns read: the rows'
    other columns (read by name, without the kept ones) retype the right one."""
    path = jobs_table(tmp_path / "cell_metadata.csv", donor=True)
    sampled = metadata.read_cell_table_once(path, ["umi_count"], "cell_label")
    taken = sampled._second_pass(np.array([0, 5999]))
    assert taken.column("alignment_job_id").to_pylist() == ["1000000000", f"{5999:040x}"]
    assert taken.column_names == ["cell_label", "donor", "alignment_job_id", "umi_count"]
    assert taken.column("umi_count").type == pa.float64()
    with pytest.raises(AbcError, match="not a readable CSV"):  # asked for: its type matters
        metadata.read_cell_table(path, ["alignment_job_id", "cell_label"])


def test_labels_hashed_in_pieces_hash_as_they_do_alone(monkeypatch):
    """Hashing in pieces bounds the memory (a number per byte of label); each label's hash
    stays its own."""
    from abc_downsample.sampling import hashing

    labels = [f"{i:06d}-cell_{'x' * (i % 7)}" for i in range(1000)]
    whole = hashing.hash_labels(labels, seed=3)
    monkeypatch.setattr(hashing, "PIECE", 37)
    assert (hashing.hash_labels(pa.chunked_array([labels[:500], labels[500:]]), 3) == whole).all()
    assert hashing.hash_labels([labels[999]], 3)[0] == whole[999]
