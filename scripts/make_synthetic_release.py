"""Rule synthetic_release: a small synthetic ABC Atlas release in a local directory bucket."""

from abc_downsample.rule_io import log, run
from abc_downsample.synthetic import manifest_key, write_release


def main():
    settings = snakemake.params.synthetic
    info = write_release(
        snakemake.params.root,
        release=str(settings["release"]),
        n_cells=int(settings["n_cells"]),
        n_genes=int(settings["n_genes"]),
        seed=int(settings["seed"]),
    )
    written = f"{info['root']}/{manifest_key(info['release'])}"
    log.info("synthetic release %s: %d files in %s", info["release"], len(info["files"]), written)


run(main, snakemake.log[0])
