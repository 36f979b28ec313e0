"""Gene panels (``output.genes``, issue 23) with the real snakemake on the demo release: the
result keeps the panel's genes in the matrices' order and every cell in its order; a new
panel reruns only concat; names of no gene are one warning line."""

import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import ERROR, RESULT, moto_config, run_snakemake, snakemake_ok
from synthetic_paths import GENES


def jobs(output: str, rule: str) -> int:
    return len(re.findall(rf"^(?:local)?(?:rule|checkpoint) {rule}:$", output, flags=re.M))


@pytest.fixture(scope="module")
def whole(tmp_path_factory, s3_endpoint):
    """A run with every gene; the panel tests rerun it in place."""
    workdir = tmp_path_factory.mktemp("panel")
    snakemake_ok(workdir, config=moto_config(s3_endpoint))
    return {"workdir": workdir, "result": ad.read_h5ad(workdir / RESULT)}


def test_a_panel_keeps_its_genes_and_every_cell_and_reruns_only_concat(
    whole, s3_endpoint, synthetic_release
):
    genes = pd.read_csv(Path(synthetic_release["root"], GENES), keep_default_na=False)
    wanted = [genes["gene_symbol"].iloc[40], genes["gene_identifier"].iloc[3], "NotAGene",
              genes["gene_symbol"].iloc[7]]  # fmt: skip
    workdir, before = whole["workdir"], whole["result"]
    config = moto_config(s3_endpoint, output={"genes": wanted})
    output = snakemake_ok(workdir, config=config)
    assert jobs(output, "concat") == 1
    assert jobs(output, "subset_matrix") == 0 and jobs(output, "sample_cells") == 0
    warning = ("abc-downsample: warning: output.genes: 1 of its 4 names are no gene of the "
               "matrices (gene_identifier or gene_symbol), e.g. 'NotAGene': left out")  # fmt: skip
    assert output.splitlines().count(warning) == 1, output[-3000:]

    panel = ad.read_h5ad(workdir / RESULT)
    expected = genes["gene_identifier"].iloc[[3, 7, 40]].tolist()  # the matrices' order
    assert panel.var_names.tolist() == expected
    assert panel.obs_names.tolist() == before.obs_names.tolist()
    pd.testing.assert_frame_equal(panel.obs, before.obs)
    columns = before.var_names.get_indexer(expected)
    np.testing.assert_array_equal(panel.X.toarray(), before.X[:, columns].toarray())
    assert list(panel.uns["abc_downsample"]["genes"]) == [str(w) for w in wanted]

    again = snakemake_ok(workdir, config=config)
    assert "Nothing to be done" in again


def test_a_panel_file_whose_content_decides(whole, s3_endpoint, synthetic_release):
    genes = pd.read_csv(Path(synthetic_release["root"], GENES), keep_default_na=False)
    workdir = whole["workdir"]
    panel_file = workdir / "panel.txt"
    panel_file.write_text("gene\n" + "\n".join(genes["gene_symbol"].iloc[[5, 9]]) + "\n")
    config = moto_config(s3_endpoint, output={"genes": str(panel_file)})
    output = snakemake_ok(workdir, config=config)
    assert jobs(output, "concat") == 1 and jobs(output, "subset_matrix") == 0
    assert ad.read_h5ad(workdir / RESULT).var_names.tolist() == (
        genes["gene_identifier"].iloc[[5, 9]].tolist()
    )
    panel_file.write_text("\n".join(genes["gene_identifier"].iloc[[1, 2, 3]]) + "\n")
    output = snakemake_ok(workdir, config=config)
    assert jobs(output, "concat") == 1 and jobs(output, "subset_matrix") == 0
    result = ad.read_h5ad(workdir / RESULT)
    assert result.n_vars == 3 and result.n_obs == whole["result"].n_obs

    output = snakemake_ok(workdir, config=moto_config(s3_endpoint))  # back to every gene
    assert jobs(output, "concat") == 1 and jobs(output, "subset_matrix") == 0
    assert ad.read_h5ad(workdir / RESULT).n_vars == whole["result"].n_vars


def test_a_panel_file_that_is_not_there_is_one_line(tmp_path, s3_endpoint):
    config = moto_config(s3_endpoint, output={"genes": "Snap25"})
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"{ERROR} output.genes Snap25 is not a file")
