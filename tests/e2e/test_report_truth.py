"""The report and the result's provenance say what the run did, from what it recorded,
never from the config of the command that makes the report (issue 22, finding 3). The
real snakemake on the offline demo (config/demo.yaml)."""

import re

import anndata as ad
import pandas as pd
import pytest
from conftest import DEMO, DEMO_OUT, snakemake_ok

OUT = DEMO_OUT  # the demo's outputs
DRAW = ("target_cells", "min_cluster_size", "seed", "strategy")


def with_sampling(**sampling) -> dict:
    return {**DEMO, "sampling": {**DEMO["sampling"], **sampling}}


def report_text(workdir) -> str:
    """The report's first screen as text (the landing fragment, as embedded)."""
    snakemake_ok(workdir, "--report", "report.html", config=DEMO)  # the demo's: no override
    page = (workdir / "report.html").read_text()
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("report_truth")


def test_a_report_made_without_the_runs_override_says_what_the_run_did(workdir):
    snakemake_ok(workdir, config=with_sampling(target_cells=2000))
    result = ad.read_h5ad(workdir / OUT["expression"], backed="r")
    assert result.n_obs == 2000 and result.uns["abc_downsample"]["target_cells"] == 2000
    text = report_text(workdir)
    assert "target_cells = 2,000 with the proportional strategy" in text
    assert "target_cells = 1,500" not in text
    assert "2,000 of 6,000" in text


def test_a_given_cell_list_is_named_and_no_draw_is_claimed(workdir):
    picked = pd.read_csv(workdir / OUT["cells"])
    picked.iloc[:700][["cell_label"]].to_csv(workdir / "given.csv", index=False)
    snakemake_ok(workdir, config=with_sampling(cells_file="given.csv"))
    result = ad.read_h5ad(workdir / OUT["expression"], backed="r")
    provenance = result.uns["abc_downsample"]
    assert result.n_obs == 700
    assert provenance["cells_file"] == "given.csv" and len(provenance["cells_file_md5"]) == 32
    assert not set(DRAW) & set(provenance), provenance
    text = report_text(workdir)
    assert "cells from given.csv (not sampled)" in text
    assert not re.search(r"target_cells =|seed \d|strategy over", text)
    assert "under 50 cells" not in text
