"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

The job gets its matrix itself (``abc.transfer``): from the shared cache, downloading it
there first if need be (download), by byte ranges (stream), or the cheaper way (auto). With
download_on_host, the receipt of a download job that filled the cache comes with it.

The workflow runs it as a command (``shell:``): a job then costs no ``script:`` preamble
(~0.12 s of Snakemake's imports and unpickling a job, 24 times a run); under ``script:``
(tests' one-rule workflows) it reads the ``snakemake`` object as before.
"""

import argparse
import ast
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package, as script: sets it

from abc_downsample.atomic import write_done_marker  # noqa: E402
from abc_downsample.cache.layout import entry_from_fields, read_receipt  # noqa: E402
from abc_downsample.rule_io import run  # noqa: E402


def subset(abc: dict, fields: dict, receipt, cells, out, done, matrix: str, settings) -> None:
    from abc_downsample.subset.job import subset_matrix_file

    entry = read_receipt(receipt) if receipt else entry_from_fields(fields)
    # transport tuning comes from the config, not params: tuning never reruns a job
    stats = subset_matrix_file(abc, entry, cells, out, matrix, downloaded=bool(receipt))
    logging.getLogger("abc_downsample").info(stats.summary(matrix))
    write_done_marker(done, settings)


def arguments(argv=None) -> argparse.Namespace:
    """The command line the rule writes: paths as they are, dicts as Python or JSON."""
    parser = argparse.ArgumentParser(description="one subset job")
    for name in ("cells", "out", "done", "matrix", "file", "settings", "abc", "log"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--receipt", default="")
    return parser.parse_args(argv)


def from_snakemake(smk) -> None:
    p, inp, out = smk.params, smk.input, smk.output
    receipt = inp.get("matrix") or None
    job = (smk.config["abc"], p.get("file", {}), receipt, inp.cells, out.h5ad, out.done,
           p.matrix, p.settings)  # fmt: skip
    run(lambda: subset(*job), smk.log[0])


def from_command_line() -> None:
    a = arguments()
    job = (json.loads(a.abc), ast.literal_eval(a.file), a.receipt, a.cells, a.out, a.done,
           a.matrix, ast.literal_eval(a.settings))  # fmt: skip
    run(lambda: subset(*job), a.log)


if "snakemake" in globals():  # the script: directive
    from_snakemake(snakemake)  # noqa: F821
elif __name__ == "__main__":
    from_command_line()
