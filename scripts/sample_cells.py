"""Rule script: sample the cells (or take a given list) and explain the sample. While it
samples, the cached matrices the sample may take are checked (MD5, once) on the job's
other threads: their subset jobs then find them stamped."""

import logging

from abc_downsample.atomic import write_done_marker
from abc_downsample.cache.background import verify_matrices
from abc_downsample.cache.download import cached_input
from abc_downsample.dataset.profile import as_list, dataset_of_rule
from abc_downsample.release.manifest import Manifest
from abc_downsample.rule_io import run, say
from abc_downsample.run_messages import sample_line
from abc_downsample.sampling.sample import SideTables, sample_to_files

log = logging.getLogger("abc_downsample")


def main():
    inp, out, abc = snakemake.input, snakemake.output, snakemake.config["abc"]
    sampling = dict(snakemake.params.sampling)
    side = SideTables(*(_one_cached(inp.get(role), abc) for role in ("membership", "embedding")))
    verifier = []

    def check_matrices(labels):
        manifest_path = snakemake.params.get("manifest")  # none: nothing checked meanwhile
        if manifest_path:
            manifest, threads = Manifest.load(manifest_path), max(1, snakemake.threads - 1)
            verifier.extend(filter(None, [verify_matrices(abc, manifest, labels, threads, log)]))

    try:
        sample = sample_to_files(
            cached_input(inp.cell_metadata, abc),
            [cached_input(path, abc) for path in as_list(inp.taxonomy)],
            sampling,
            out.cells,
            out.summary,
            out.levels,
            out.rows,
            out.population,
            dataset=dataset_of_rule(snakemake.params, abc),
            side=side,
            on_population=check_matrices,
        )
    finally:
        for running in verifier:
            log.info(running.finish())
    write_done_marker(out.done, snakemake.params.settings)
    # once, early: Snakemake's own progress count grows as this checkpoint adds the jobs
    say(sample_line(sample, sampling["cluster_column"]))


def _one_cached(receipts, abc):
    """The cached file of a rule input that is one receipt or none."""
    paths = [cached_input(path, abc) for path in as_list(receipts)]
    return paths[0] if paths else None


run(main, snakemake.log[0])
