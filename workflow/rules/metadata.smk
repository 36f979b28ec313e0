# The metadata tables, into the abc_atlas_access cache layout (the manifest is fetched
# while the workflow is read: see abc_downsample.release.resolve).
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
        "../../scripts/download_file.py"
