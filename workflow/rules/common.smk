# Configuration, paths and the input/resource functions shared by the rules.
import functools
import json
from pathlib import Path

import pandas as pd

from abc_downsample import __version__
from abc_downsample import resources as res
from abc_downsample.atomic import write_if_changed
from abc_downsample.cache import cache_path, file_md5
from abc_downsample.config_check import check_config
from abc_downsample.storage import local_root
from abc_downsample.errors import AbcError
from abc_downsample.manifest import Manifest, manifest_key


def fail(err):
    """Stop with one line instead of a traceback."""
    sys.stderr.write(f"abc-downsample: error: {err}\n")
    sys.exit(1)


try:
    check_config(
        config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
    )
except AbcError as err:
    fail(err)

ABC = config["abc"]
OUT = config["output"]
CACHE = ABC["cache_dir"]
LOGS = f"{OUT['dir']}/logs"
BENCH = f"{OUT['dir']}/benchmarks"
SUBSETS = f"{OUT['dir']}/subsets"
# The project's own bookkeeping: its copy of the manifest, what it fetched into the
# (shared) cache, and the settings its results were made with. Never in the cache.
STATE = f"{OUT['dir']}/.abc"
RECEIPTS = f"{STATE}/cached"
STREAM = ABC["transfer"] == "stream"


def resolve_release():
    """A pinned release as it is; "latest" is resolved once per run, by the main process:
    jobs (cluster jobs re-read this file) take the run's answer from STATE/latest_release."""
    if ABC["release"] != "latest":
        return ABC["release"]
    record = Path(STATE, "latest_release")
    if not workflow.is_main_process:
        return record.read_text().strip()
    from abc_downsample.manifest import newest_release
    from abc_downsample.storage import store_from_config

    try:
        release = newest_release(store_from_config(ABC).list_keys("releases/"))
    except AbcError as err:
        if not record.exists():
            raise
        release = record.read_text().strip()
        note(f"warning: cannot list the releases ({err}); using {release}, the last one seen")
    write_if_changed(record, release + "\n")
    note(f"abc.release latest is {release}")
    return release


def note(message):
    """One line for the user on the terminal, once per run (the main process only)."""
    if workflow.is_main_process:
        sys.stderr.write(f"abc-downsample: {message}\n")


try:
    RELEASE = resolve_release()
except AbcError as err:
    fail(err)

MANIFEST = f"{STATE}/releases/{RELEASE}/manifest.json"


def settings_file(name, settings):
    """A file whose content is ``settings``, rewritten only when they change: a rule that
    takes it as input reruns exactly when a setting that affects its output changes."""
    path = f"{STATE}/settings/{name}.json"
    if workflow.is_main_process:
        write_if_changed(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")
    return path


def cells_file_digest():
    """The given cell list's MD5: its content, not its name, decides the result."""
    path = config["sampling"]["cells_file"]
    if path is None:
        return None
    if not os.path.isfile(path):
        fail(f"sampling.cells_file {path} does not exist: fix the path or set it to null")
    return file_md5(path).hexdigest()


SAMPLING_SETTINGS = {
    "release": RELEASE,
    **config["sampling"],
    "cells_file_md5": cells_file_digest(),
}
SETTINGS = {
    "sampling": settings_file("sampling", SAMPLING_SETTINGS),
    "subsets": settings_file("subsets", {"release": RELEASE, "variant": ABC["variant"]}),
    "result": settings_file("result", {**SAMPLING_SETTINGS, "variant": ABC["variant"]}),
}


def manifest():
    """The release manifest, once the fetch_manifest checkpoint has run."""
    checkpoints.fetch_manifest.get()
    return manifest_on_disk()


def manifest_on_disk():
    """The manifest as it is now, for resource functions: they must not wait on the
    checkpoint (Snakemake then sets the resource to a bare 0). If it is not there yet,
    FileNotFoundError makes Snakemake evaluate the resource again later."""
    if not os.path.exists(MANIFEST):
        raise FileNotFoundError(2, "not fetched yet", MANIFEST)
    return _parsed_manifest(MANIFEST, os.stat(MANIFEST).st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parsed_manifest(path, mtime_ns):
    """Parsed once per version of the file: input, params and resource functions of every
    job ask for it."""
    return Manifest.load(path)


def matrix_size(matrix):
    return matrix_entry_on_disk(matrix).size


def receipt(entry):
    """The project's receipt for a cached file. ancient: a receipt rewritten because the
    manifest changed must not rerun its readers (the settings files decide that)."""
    return ancient(f"{RECEIPTS}/{cache_path('', entry.relative_path)}.json")


def metadata_path(directory, name):
    """Receipt of a metadata table, e.g. ("WMB-10X", "cell_metadata")."""
    return receipt(manifest().metadata_file(directory, name))


def cell_metadata_path(wildcards=None):
    return metadata_path("WMB-10X", "cell_metadata")


def taxonomy_path(wildcards=None):
    return metadata_path(
        "WMB-taxonomy", "cluster_to_cluster_annotation_membership_pivoted"
    )


def genes_path(wildcards=None):
    return metadata_path("WMB-10X", "gene")


def matrix_entry(matrix):
    """The manifest entry of a matrix file, by feature_matrix_label and abc.variant."""
    return manifest().matrix_file(matrix, ABC["variant"])


def needed_matrices():
    """feature_matrix_labels of the sampled cells (after the sample_cells checkpoint)."""
    cells = checkpoints.sample_cells.get().output.cells
    labels = pd.read_csv(cells, usecols=["feature_matrix_label"])[
        "feature_matrix_label"
    ]
    return sorted(labels.unique())


def subset_paths(wildcards=None):
    return [f"{SUBSETS}/{m}.h5ad" for m in needed_matrices()]


def provenance():
    """What made the dataset, stored in uns["abc_downsample"] of the result."""
    m = manifest()
    return {
        "workflow": "abc-downsample",
        "workflow_version": __version__,
        "release": m.version,
        "directory_versions": m.directory_versions(),
        "variant": ABC["variant"],
        **{k: v for k, v in SAMPLING_SETTINGS.items() if v is not None and k != "release"},
    }


def matrix_input(wildcards):
    """The cached matrix's receipt in download mode; nothing in stream mode."""
    return [] if STREAM else receipt(matrix_entry(wildcards.matrix))


def subset_mem_mb(wildcards, input, attempt):
    """From the selected rows' bytes, more on a retry (the first try may have run out)."""
    return attempt * _subset_mem_mb(wildcards.matrix, input)


def _subset_mem_mb(matrix, input):
    """From the cached file's indptr, else estimated from the manifest size."""
    _require_input(input.cells)
    if not STREAM:
        _require_input(input.matrix)  # not fetched yet: Snakemake asks again when it is
        local = cache_path(CACHE, matrix_entry_on_disk(matrix).relative_path)
        try:
            return res.subset_mem_mb(local, input.cells, matrix)
        except Exception:  # missing, damaged or unusual (dense X): the job says what
            pass
    return res.estimate_subset_mem_mb_from_cells(
        matrix_size(matrix), input.cells, matrix
    )


def _require_input(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "not made yet", str(path))


def matrix_entry_on_disk(matrix):
    return manifest_on_disk().matrix_file(matrix, ABC["variant"])


def download_runtime(wildcards):
    """Minutes for a file at a pessimistic 5 MB/s, plus slack."""
    return 10 + manifest_on_disk().entry_for(wildcards.relpath).size // (
        5 * 1024**2 * 60
    )
