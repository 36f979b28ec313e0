"""Errors that name the real problem and the real fix, in one line (issue 11, finding 8)."""

import errno

import pandas as pd
import pytest
from synthetic_paths import CELLS, PIVOTED

from abc_downsample.errors import AbcError
from abc_downsample.rule_io import run
from abc_downsample.sampling.sample import sample_cells
from abc_downsample.units import size_text


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device", "data/x.h5ad"),
        # h5py's form: errno unset, the reason inside its message
        OSError("Can't write data (file write failed: errno = 28, error message = "
                "'No space left on device')"),  # fmt: skip
    ],
)
def test_a_full_disk_is_one_line(error, capfd, tmp_path, rule_logging):
    def main():
        raise error

    with pytest.raises(SystemExit) as exit_:
        run(main, str(tmp_path / "job.log"))
    assert exit_.value.code == 1
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abc-downsample: error: the disk is full")
    assert "free space" in lines[0]


def test_sizes_in_messages_keep_their_scale():
    assert size_text(3_400_000) == "3.4 MB"
    assert size_text(2_500_000_000) == "2.5 GB"
    assert size_text(512) == "512 bytes"


def test_a_cell_table_without_cluster_alias_names_the_table(tmp_path, synthetic_release):
    root = synthetic_release["root"]
    cells = pd.read_csv(f"{root}/{CELLS}").drop(columns="cluster_alias")
    cells.to_csv(tmp_path / "cell_metadata.csv", index=False)
    with pytest.raises(AbcError) as err:
        sample_cells(tmp_path / "cell_metadata.csv", f"{root}/{PIVOTED}", {"target_cells": 100})
    message = str(err.value)
    assert "lacks the column(s) 'cluster_alias'" in message and "cell_metadata.csv" in message
    assert "sampling.cluster_column" not in message


