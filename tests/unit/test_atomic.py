"""atomic.remove_orphans: temporary files of killed writers go, those of live writers stay."""

import subprocess
import sys

from abc_downsample.atomic import atomic_path, remove_orphans


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def test_remove_orphans_deletes_only_files_of_dead_writers(tmp_path):
    dead = dead_pid()
    (tmp_path / "subsets").mkdir()
    orphans = [
        tmp_path / f".downsampled_expression.h5ad.tmp-{dead}.h5ad",
        tmp_path / "subsets" / f".WMB-10Xv3-MB.h5ad.tmp-{dead}.h5ad",
        tmp_path / f".downsampled_cells.csv.tmp-{dead}",
    ]
    kept = [
        tmp_path / f".downsampled_cells.csv.tmp-{dead}x",  # not our name pattern
        tmp_path / "downsampled_expression.h5ad",  # a result
        tmp_path / ".matrix.h5ad.part",  # a resumable download
        tmp_path / "x.tmp-1",  # not hidden: not ours
    ]
    for path in orphans + kept:
        path.write_text("x")
    with atomic_path(tmp_path / "live.csv") as live:  # a writer still at work (this process)
        live.write_text("x")
        removed = remove_orphans(tmp_path)
        assert live.exists()
    assert sorted(removed) == sorted(orphans)
    assert not any(p.exists() for p in orphans)
    assert all(p.exists() for p in kept)
    assert (tmp_path / "live.csv").read_text() == "x"


def test_remove_orphans_of_a_missing_directory_is_a_no_op(tmp_path):
    assert remove_orphans(tmp_path / "absent") == []
