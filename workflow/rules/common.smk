# Configuration, paths and the input/resource functions shared by the rules.
import functools

import pandas as pd

from abc_downsample import __version__
from abc_downsample import resources as res
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
# auto decides per matrix in the subset job, which downloads itself if it picks download;
# with download_on_host (compute nodes without internet) it is download
STREAM = ABC["transfer"] == "stream" or (
    ABC["transfer"] == "auto" and not ABC["download_on_host"]
)


def resolve_release():
    """A pinned release as it is; "latest" is the newest manifest in the bucket."""
    if ABC["release"] != "latest":
        return ABC["release"]
    from abc_downsample.manifest import newest_release
    from abc_downsample.storage import open_store

    store = open_store(ABC["bucket"], ABC["endpoint_url"])
    return newest_release(store.list_keys("releases/"))


try:
    RELEASE = resolve_release()
except AbcError as err:
    fail(err)

MANIFEST = f"{CACHE}/{manifest_key(RELEASE)}"


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
    return manifest_on_disk().matrix_file(matrix, ABC["variant"]).size


def cached(entry):
    """Cache path of a manifest entry; ancient: cached files are re-fetched, never outdated."""
    return ancient(f"{CACHE}/{entry.relative_path}")


def metadata_path(directory, name):
    """Cache path of a metadata table, e.g. ("WMB-10X", "cell_metadata")."""
    return cached(manifest().metadata_file(directory, name))


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
    sampling = config["sampling"]
    return {
        "workflow": "abc-downsample",
        "workflow_version": __version__,
        "release": m.version,
        "directory_versions": m.directory_versions(),
        "variant": ABC["variant"],
        **{k: v for k, v in sampling.items() if v is not None},
    }


def matrix_input(wildcards):
    """The cached matrix in download mode; nothing in stream mode (read remotely)."""
    return [] if STREAM else cached(matrix_entry(wildcards.matrix))


def subset_mem_mb(wildcards, input, attempt):
    """From the selected rows' bytes, more on a retry (the first try may have run out)."""
    return attempt * _subset_mem_mb(wildcards.matrix, input)


def _subset_mem_mb(matrix, input):
    """From the cached file's indptr, else estimated from the manifest size."""
    if not STREAM:
        try:
            return res.subset_mem_mb(input.matrix, input.cells, matrix)
        except FileNotFoundError:
            raise  # not downloaded yet: Snakemake asks again when it is
        except (OSError, AbcError):
            pass  # a damaged file: the job itself reports it in one line
    return res.estimate_subset_mem_mb_from_cells(
        matrix_size(matrix), input.cells, matrix
    )


def download_runtime(wildcards):
    """Minutes for a file at a pessimistic 5 MB/s, plus slack."""
    return 10 + manifest_on_disk().entry_for(wildcards.relpath).size // (
        5 * 1024**2 * 60
    )
