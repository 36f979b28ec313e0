"""A dry-run works at every stage (issue 22, finding 1): before any sample, after a changed
sampling setting, with one subset deleted; and says what it cannot know yet, or which
matrices the sample needs. The real snakemake on the offline demo (config/demo.yaml)."""

import re

import pytest
from conftest import DEMO, DEMO_OUT, ERROR, run_snakemake

NOTE = "abc-downsample: dry-run:"


def dry_run(workdir, config=DEMO) -> str:
    result = run_snakemake(workdir, "-n", config=config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "Exception" not in output and ERROR not in output
    return output


def planned(output: str) -> set[str]:
    """The rules a dry-run lists jobs of."""
    return set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", output, re.M))


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dry_run")


def test_dry_run_before_any_sample(demo_dir):
    output = dry_run(demo_dir)
    assert {"sample_cells", "concat"} <= planned(output)
    assert last_line(output).startswith(f"{NOTE} sampling runs first (there is no sample yet)")


def test_dry_run_after_a_run_and_after_changes(demo_dir):
    result = run_snakemake(demo_dir, config=DEMO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    matrices = sorted(p.stem for p in (demo_dir / DEMO_OUT["dir"] / "subsets").iterdir())

    assert last_line(dry_run(demo_dir)) == (
        f"{NOTE} the sample (1,500 cells) needs {len(matrices)} matrix files; every subset "
        "is made"
    )

    changed = {**DEMO, "sampling": {**DEMO["sampling"], "target_cells": 2000}}
    output = dry_run(demo_dir, changed)
    assert {"sample_cells", "concat"} <= planned(output)
    assert "(the sampling settings changed)" in last_line(output)

    (demo_dir / DEMO_OUT["dir"] / "subsets" / f"{matrices[0]}.h5ad").unlink()
    output = dry_run(demo_dir)
    assert {"subset_matrix", "concat"} <= planned(output)
    assert "sample_cells" not in planned(output)
    assert re.search(rf"1 subset to make: {matrices[0]} \([\d,]+ cells, to fetch\)$",
                     last_line(output)), last_line(output)  # fmt: skip
