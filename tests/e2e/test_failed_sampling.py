"""A failed sampling attempt on a finished result (issue 22, finding 9): Snakemake removes
the failed job's outputs, the earlier sample with them, and the earlier result stays
behind. The run says so, before its one-line error, which stays last."""

from conftest import DEMO, DEMO_OUT, ERROR, run_snakemake


def test_a_failed_resample_names_the_result_it_leaves_without_a_sample(tmp_path):
    first = run_snakemake(tmp_path, config=DEMO)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    (tmp_path / "given.csv").write_text("cell_label\nno-such-cell\n")
    failing = {**DEMO, "sampling": {**DEMO["sampling"], "cells_file": "given.csv"}}
    result = run_snakemake(tmp_path, config=failing)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(ERROR) and "no-such-cell" in lines[-1], lines[-5:]
    expression = DEMO_OUT["expression"]
    assert (tmp_path / expression).exists() and not (tmp_path / DEMO_OUT["cells"]).exists()
    notes = [line for line in lines if line.startswith("abc-downsample: note:")]
    assert len(notes) == 1 and lines.index(notes[0]) == len(lines) - 2, lines[-5:]
    subsets = len(list((tmp_path / DEMO_OUT["dir"] / "subsets").glob("*.h5ad")))
    assert notes[0].startswith(f"abc-downsample: note: {expression} and {subsets} subsets in ")
    assert "no longer match a sample" in notes[0]
