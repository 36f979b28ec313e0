"""Stream mode's subset job as the rule script runs it, for tests that need a process of
its own (to bound it in time and kill it if it hangs):

    python tests/stream_job.py '<abc config as JSON>' KEY CELLS_CSV OUT MATRIX
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from abc_downsample.config_check import abc_with_defaults  # noqa: E402
from abc_downsample.rule_io import run  # noqa: E402
from abc_downsample.subset.job import subset_from_config


def main() -> None:
    abc, key, cells, out, matrix = sys.argv[1:6]
    stats = subset_from_config(abc_with_defaults(json.loads(abc)), key, cells, out, matrix)
    print(f"rows={stats.rows} bytes={stats.bytes_read}", flush=True)


if __name__ == "__main__":
    run(main)
