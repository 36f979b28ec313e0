# Files of the release into the shared cache, in the abc_atlas_access layout: the metadata
# tables, and the matrices where compute nodes have no internet (abc.download_on_host;
# otherwise each subset job gets its own matrix). The manifest is fetched while the
# workflow is read (abc_downsample.release.resolve).
# Cached files are never outputs (another project's Snakemake would delete them): a job
# fetches or checks a file in the cache and writes the project's receipt for it.


rule download_metadata:
    input:
        manifest=ancient(MANIFEST),
    output:
        f"{RECEIPTS}/{{relpath}}.json",
    log:
        f"{LOGS}/download/{{relpath}}.log",
    wildcard_constraints:
        relpath=r"metadata/.+",
    localrule: ABC["download_on_host"]
    conda:
        "../../envs/abc.yaml"
    resources:
        mem_mb=1024,
        runtime=60,
    params:
        relative_path=relpath_of,
    script:
        "../../scripts/download_metadata.py"


rule download_matrix:
    input:
        manifest=ancient(MANIFEST),
    output:
        # the receipt; with keep_matrices false the subset job deletes the matrix, and the
        # receipt goes with it, so a rebuilt subset fetches the matrix again
        (
            f"{RECEIPTS}/{{relpath}}.json"
            if ABC["keep_matrices"]
            else temp(f"{RECEIPTS}/{{relpath}}.json")
        ),
    log:
        f"{LOGS}/download/{{relpath}}.log",
    benchmark:
        f"{BENCH}/download/{{relpath}}.tsv"
    wildcard_constraints:
        relpath=r"expression_matrices/.+\.h5ad",
    localrule: ABC["download_on_host"]
    conda:
        "../../envs/abc.yaml"
    resources:
        mem_mb=1024,
        runtime=download_runtime,
    params:
        relative_path=relpath_of,
    script:
        "../../scripts/download_matrix.py"
