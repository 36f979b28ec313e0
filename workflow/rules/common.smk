# Configuration, paths and the input/resource functions shared by the rules.
import functools
from pathlib import Path

from snakemake.io import is_flagged

from abc_downsample import __version__
from abc_downsample import resources as res
from abc_downsample.atomic import settings_key
from abc_downsample.cache.layout import cache_path, entry_fields
from abc_downsample.cache.verify import file_md5, receipt_if_trusted
from abc_downsample.config_check import check_config
from abc_downsample.dataset.choose import run_dataset
from abc_downsample.dataset.profile import dataset_name
from abc_downsample.release import resolve as abc_release
from abc_downsample.errors import AbcError
from abc_downsample.project import CONFIG_SCHEMA
from abc_downsample.cache.store import local_root


def fail(err):
    """Stop with one line instead of a traceback."""
    sys.stderr.write(f"abc-downsample: error: {err}\n")
    sys.exit(1)


def one_line(function):
    """For an input, param or resource function: its AbcError (a release without a table
    the dataset needs, an unknown matrix) stops the run with one line, not Snakemake's
    InputFunctionException and traceback. Its signature is kept: Snakemake reads it."""

    @functools.wraps(function)
    def checked(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except AbcError as err:
            fail(err)

    return checked


try:
    check_config(config, CONFIG_SCHEMA)
except AbcError as err:
    fail(err)

ABC = config["abc"]
# every output under output.dir, by the names config.output gives
# the results' paths (output.genes is the gene panel, not a file of the results)
OUT = {
    key: value if key == "dir" else f"{config['output']['dir']}/{value}"
    for key, value in config["output"].items()
    if key != "genes"
}
CACHE = ABC["cache_dir"]
LOGS = f"{OUT['dir']}/logs"
BENCH = f"{OUT['dir']}/benchmarks"
SUBSETS = f"{OUT['dir']}/subsets"
# The project's own bookkeeping: its copy of the manifest, what it fetched into the
# (shared) cache, and the settings its results were made with. Never in the cache.
STATE = f"{OUT['dir']}/.abc"
RECEIPTS = f"{STATE}/cached"
# Each subset job gets its own matrix (from the shared cache, downloading it there first
# if needed, or by byte ranges): one job per matrix. With download_on_host (compute nodes
# without internet) download jobs on the submitting host fill the cache first.
DOWNLOAD_JOBS = ABC["download_on_host"] and ABC["transfer"] != "stream"


def note(message):
    """One line for the user on the terminal, once per run (the main process only)."""
    if workflow.is_main_process:
        sys.stderr.write(f"abc-downsample: {message}\n")


def release_and_manifest():
    """The run's release and its manifest (see abc_downsample.release.resolve)."""
    main = workflow.is_main_process
    if (
        config["synthetic"]["enabled"] and main
    ):  # the demo's bucket, before it is listed
        from abc_downsample.demo.release import NEWEST, ensure_release

        wanted = NEWEST if ABC["release"] == "latest" else ABC["release"]
        settings = {"release": wanted, "dataset": dataset_name(ABC)}
        ensure_release(local_root(ABC["bucket"]), {**config["synthetic"], **settings})
    release = abc_release.resolve(ABC, Path(STATE, "latest_release"), main, note)
    path = f"{STATE}/releases/{release}/manifest.json"
    return release, path, abc_release.project_manifest(ABC, release, Path(path), main)


try:
    RELEASE, MANIFEST, MANIFEST_DATA = release_and_manifest()
    # everything specific to the dataset: a profile file, else inferred from the release
    DATASET = run_dataset(
        ABC["dataset"],
        MANIFEST_DATA,
        ABC,
        Path(
            STATE, "releases", RELEASE, "profiles", f"{Path(ABC['dataset']).stem}.yaml"
        ),
        workflow.is_main_process,
        note,
    )
except AbcError as err:
    fail(err)
# the profile's group key unless the config names another grouping column
config["sampling"]["cluster_column"] = (
    config["sampling"]["cluster_column"] or DATASET.cells.group
)
# the taxonomy's levels, top first; a dataset without taxonomy has one, its group key
# (taxonomy.read_taxonomy)
LEVELS = list(DATASET.taxonomy.levels) or [DATASET.cells.group]


def given_file_digest(key):
    """The MD5 of a given cell list (sampling.cells_file or sampling.within): its content,
    not its name, decides the result."""
    path = config["sampling"][key]
    if path is None:
        return None
    if not os.path.isfile(path):
        fail(f"sampling.{key} {path} does not exist: fix the path or set it to null")
    return file_md5(path).hexdigest()


# What each stage's output depends on besides its input files.
SAMPLING_SETTINGS = {
    "release": RELEASE,
    "dataset": DATASET.raw,
    **config["sampling"],
    "cells_file_md5": given_file_digest("cells_file"),
    "within_md5": given_file_digest("within"),
}


def gene_panel_settings():
    """output.genes, the genes the result keeps: a list, or a file whose content decides.
    Only concat depends on it (the subsets keep every gene)."""
    genes = config["output"]["genes"]
    if genes is None:
        return {}
    if isinstance(genes, str):
        if not os.path.isfile(genes):
            fail(
                f"output.genes {genes} is not a file: give the path of a file with one gene "
                "a line, or a list, e.g. output: {genes: [Snap25, Gad1]}"
            )
        return {"genes_file": genes, "genes_md5": file_md5(genes).hexdigest()}
    return {"genes": [str(gene) for gene in genes]}


CONCAT_SETTINGS = gene_panel_settings()
SUBSET_SETTINGS = {
    "release": RELEASE,
    "variant": ABC["variant"],
    "dataset": DATASET.name,
}


def done_marker(stage, name, settings):
    """An extra output named after the settings a job ran with. Changed settings name a
    missing file, and a missing output is the one rerun trigger Snakemake never skips
    (it skips others for jobs near checkpoints). The job removes its older markers, so
    going back to earlier settings reruns it too."""
    return f"{STATE}/done/{stage}/{name}.{settings_key(settings)}.json"


SAMPLE_DONE = done_marker("sample", "sample", SAMPLING_SETTINGS)
CONCAT_DONE = done_marker("concat", "result", CONCAT_SETTINGS)


def subset_done(matrix):
    return done_marker("subsets", matrix, SUBSET_SETTINGS)


def subsets_done(wildcards=None):
    return [subset_done(m) for m in needed_matrices()]


def manifest():
    return MANIFEST_DATA


def matrix_size(matrix):
    return matrix_entry(matrix).size


def receipt(entry):
    """The project's receipt for a cached file. Not ancient(): Snakemake skips the update
    checks of jobs downstream of a rerun job, and ancient() then hides that rerun too.
    """
    return f"{RECEIPTS}/{cache_path('', entry.relative_path)}.json"


def metadata_path(table):
    """Receipt of a metadata table named by the dataset profile (a dataset.Table)."""
    return receipt(manifest().metadata_file(table.directory, table.name))


def metadata_tables():
    """Every metadata table the dataset's profile names."""
    d = DATASET
    tables = [d.cells.table, *d.taxonomy.tables(), *d.cells.side_tables]
    if d.genes is not None:
        tables += [d.genes.table, *(d.genes.table_for(m) for m in d.genes.by_matrix)]
    return tables


def receipts_of_trusted_metadata():
    """Receipts for the metadata tables the cache holds verified, written while the
    workflow is read (a stat each): no download_metadata job, a process each, then stands
    before sampling. Tables still to fetch or check are left to those jobs."""
    if not workflow.is_main_process:
        return
    for table in metadata_tables():
        try:
            entry = manifest().metadata_file(table.directory, table.name)
        except AbcError:
            continue  # the rule that needs the table says what is wrong
        receipt_if_trusted(receipt(entry), entry, ABC)


receipts_of_trusted_metadata()


@one_line
def cell_metadata_path(wildcards=None):
    return metadata_path(DATASET.cells.table)


@one_line
def membership_path(wildcards=None):
    """The per-cell table holding the group key, where the profile names one."""
    membership = DATASET.cells.membership
    return [metadata_path(membership)] if membership else []


@one_line
def embedding_path(wildcards=None):
    """The per-cell table holding the atlas's 2-d coordinates, where the profile names one."""
    embedding = DATASET.cells.embedding
    return [metadata_path(embedding)] if embedding else []


@one_line
def taxonomy_path(wildcards=None):
    """The taxonomy's tables in the profile's format (none for a dataset without one)."""
    return [metadata_path(table) for table in DATASET.taxonomy.tables()]


@one_line
def genes_path(wildcards=None):
    """The gene table of the sampled matrices (one table: sample_cells checks it); none
    where the profile names none (the matrices' own genes)."""
    if DATASET.genes is None:
        return []
    return metadata_path(DATASET.genes.table_for(needed_matrices()[0]))


def matrix_entry(matrix):
    """The manifest entry of a matrix file, by feature_matrix_label and abc.variant."""
    return manifest().matrix_file(matrix, ABC["variant"])


def needed_matrices():
    """feature_matrix_labels of the sampled cells (after the sample_cells checkpoint)."""
    return sorted(res.sample_counts(checkpoints.sample_cells.get().output.cells))


def subset_paths(wildcards=None):
    return [f"{SUBSETS}/{m}.h5ad" for m in needed_matrices()]


def provenance(wildcards=None):
    """What made the dataset, stored in uns["abc_downsample"] of the result; concat adds
    the sampling settings as the sample recorded them (abc_downsample.provenance)."""
    m = manifest()
    made = {
        "workflow": "abc-downsample",
        "workflow_version": __version__,
        "release": m.version,
        "directory_versions": m.directory_versions(),
        "variant": ABC["variant"],
        "dataset": DATASET.name,
        **CONCAT_SETTINGS,  # the gene panel (concat's own settings)
    }
    if config["synthetic"]["enabled"]:  # the demo's made-up release, not atlas data
        made["synthetic"] = True
    return made


@one_line
def matrix_input(wildcards):
    """The cached matrix's receipt with download jobs; else nothing (the job fetches)."""
    return receipt(matrix_entry(wildcards.matrix)) if DOWNLOAD_JOBS else []


@one_line
def subset_mem_mb(wildcards, input, attempt):
    """From the selected rows' bytes, more on a retry (the first try may have run out)."""
    return attempt * _subset_mem_mb(wildcards.matrix, input)


def _subset_mem_mb(matrix, input):
    """From the cached file's indptr where the cache has it, else estimated from the
    manifest size."""
    _require_input(input.cells)
    if DOWNLOAD_JOBS:
        _require_input(input.matrix)  # not fetched yet: Snakemake asks again when it is
    local = cache_path(CACHE, matrix_entry(matrix).relative_path)
    return res.subset_job_mem_mb(
        local if local.exists() else None, matrix_size(matrix), input.cells, matrix
    )


def _require_input(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "not made yet", str(path))


def dry_run_matrices():
    """For a dry-run's note: {matrix: (cells, subset made, in the cache)} of the current
    sample, None while no sample of these settings exists."""
    if not (os.path.exists(SAMPLE_DONE) and os.path.exists(OUT["cells"])):
        return None
    return {
        m: (
            n,
            os.path.exists(subset_done(m)) and os.path.exists(f"{SUBSETS}/{m}.h5ad"),
            cache_path(CACHE, matrix_entry(m).relative_path).exists(),
        )
        for m, n in sorted(res.sample_counts(OUT["cells"]).items())
    }


def missing_targets():
    """Files the run was asked for that are not there (never exit 0 without them): what
    `all` asks for, or a partial target's outputs."""
    files = []
    for job in workflow.dag.targetjobs:
        files += job.input if job.rule.norun else job.output
    return [f for f in files if not is_flagged(f, "temp") and not os.path.exists(f)]


# -- resources and params of the rules (one style: functions of the wildcards) ----------


def relpath_of(wildcards):
    return wildcards.relpath


def matrix_of(wildcards):
    return wildcards.matrix


@one_line
def matrix_file_fields(wildcards):
    return entry_fields(matrix_entry(wildcards.matrix))


@one_line
def subset_runtime(wildcards):
    return res.subset_runtime_min(matrix_size(wildcards.matrix))


def concat_mem_mb(wildcards, input):
    return res.concat_mem_mb(input.subsets)


def concat_runtime(wildcards, input):
    return res.concat_runtime_min(input.subsets)


@one_line
def r_objects_mem(wildcards, input):
    from abc_downsample.export.r_export import r_objects_mem_mb

    return r_objects_mem_mb(input.h5)


@one_line
def download_runtime(wildcards):
    return res.download_runtime_min(manifest().entry_for(wildcards.relpath).size)
