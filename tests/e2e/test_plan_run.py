"""The cost before the run (issue 23) with the real snakemake on the demo release served by
moto: `snakemake plan` samples and prints the plan without fetching a matrix; the run then
fetches what the plan said (bytes within 20 %, counted by the jobs' own logs), and the
report's first screen shows the plan as a card."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import moto_config, run_snakemake, snakemake_ok

PLAN_JSON = "data/.abc/plan.json"
READ = re.compile(
    r"MB read \((cache|download|stream)(?:: [\d,.]+ MB of rows)?\) in [\d.]+ s \(([\d.]+) s waiting"
)
FETCHED = re.compile(r"stream \S+: fetched [\d,.]+ MB \(([\d,]+) bytes\)")


def measured(workdir: Path) -> dict:
    """Per streamed matrix: (how it was read, bytes fetched, seconds), from its job's log."""
    found = {}
    for log in (workdir / "data/logs/subset_matrix").glob("*.log"):
        text = log.read_text()
        how, seconds = READ.findall(text)[-1]
        found[log.stem] = (how, int(FETCHED.findall(text)[-1].replace(",", "")), float(seconds))
    return found


@pytest.fixture(scope="module")
def planned(tmp_path_factory, s3_endpoint):
    workdir = tmp_path_factory.mktemp("plan")
    output = snakemake_ok(workdir, "plan", config=moto_config(s3_endpoint, {"transfer": "stream"}))
    return {"workdir": workdir, "output": output}


def test_plan_samples_and_prints_the_cost_without_fetching_a_matrix(planned, synthetic_release):
    workdir, output = planned["workdir"], planned["output"]
    assert not (workdir / "abc_data" / "expression_matrices").exists()
    assert not (workdir / "data" / "subsets").exists()
    lines = [line for line in output.splitlines() if line.strip()]
    plan_lines = (workdir / "data/plan.txt").read_text().splitlines()
    assert len(plan_lines) == 4
    assert lines[-4:] == [f"abc-downsample: {line}" for line in plan_lines], output[-3000:]
    summary = pd.read_csv(workdir / "data/sampling_summary.csv")
    whole = int(summary["kept_whole"].sum())
    first, fetch, disk, how = plan_lines
    assert first.startswith(f"plan: 1,500 of {summary['size'].sum():,} cells (25.0%), "
                            f"{whole} of {len(summary)} clusters kept whole")  # fmt: skip
    n_files = pd.read_csv(workdir / "data/downsampled_cells.csv")["feature_matrix_label"].nunique()
    assert f"{n_files} matrix files needed" in first and "0 in the cache" in first
    cost = r"[\d.]+ [kM]B ~[\d.]+ s"
    assert re.search(rf"to fetch: download {cost}; stream {cost} in [\d,]+ requests; auto {cost} "
                     r"\(stream 6\)", fetch)  # fmt: skip
    assert "abc.transfer: stream" in fetch and "30 ms, 40 MB/s a connection" in fetch
    assert disk.startswith("plan: disk: cache +0 bytes with stream (download: +")
    largest = r"memory: the largest job asks for [\d,]+ MB \((subset_matrix \S+|concat)\)"
    assert re.search(largest, disk)
    assert how.startswith("plan: how: read: the manifest, the cache, each matrix's HDF5 headers")

    plan = json.loads((workdir / PLAN_JSON).read_text())
    sizes = {label: Path(synthetic_release["root"], info["raw"]).stat().st_size
             for label, info in synthetic_release["matrices"].items()}  # fmt: skip
    assert plan["modes"]["download"]["bytes"] == sum(sizes[m["matrix"]] for m in plan["matrices"])


def test_the_run_fetches_what_the_plan_said_and_the_report_shows_it(planned, s3_endpoint):
    workdir = planned["workdir"]
    output = snakemake_ok(workdir, config=moto_config(s3_endpoint, {"transfer": "stream"}))
    assert not re.search(r"^(?:local)?rule make_plan:$", output, flags=re.M), "plan redone"
    plan = json.loads((workdir / PLAN_JSON).read_text())
    got = measured(workdir)
    assert set(got) == {m["matrix"] for m in plan["matrices"]}
    for matrix in plan["matrices"]:
        how, nbytes, _ = got[matrix["matrix"]]
        assert how == "stream"
        assert abs(matrix["stream"]["bytes"] - nbytes) <= 0.2 * nbytes, matrix
    total = sum(nbytes for _, nbytes, _ in got.values())
    assert abs(plan["modes"]["stream"]["bytes"] - total) <= 0.05 * total

    landing = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (workdir / "data/report/landing.html")
                                         .read_text()))  # fmt: skip
    assert "planned before the run (stream)" in landing
    assert "the largest job asks for" in landing

    again = run_snakemake(workdir, "plan", config=moto_config(s3_endpoint, {"transfer": "stream"}))
    assert again.returncode == 0 and "rule make_plan:" not in again.stdout + again.stderr
    last = [line for line in again.stderr.splitlines() if line.strip()][-4:]
    assert [line.removeprefix("abc-downsample: ") for line in last] == (
        (workdir / "data/plan.txt").read_text().splitlines()
    )
