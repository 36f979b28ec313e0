# The release manifest and the metadata tables, into the abc_atlas_access cache layout.
# Cached files are never outputs (another project's Snakemake would delete them): a job
# fetches or checks a file in the cache and writes the project's receipt for it.


checkpoint fetch_manifest:
    input:
        rules.synthetic_release.output.manifest
        if config["synthetic"]["enabled"]
        else [],
    output:
        MANIFEST,
    log:
        f"{LOGS}/fetch_manifest.log",
    localrule: True
    conda:
        "../../envs/abc.yaml"
    params:
        key=manifest_key(RELEASE),
    script:
        "../../scripts/fetch_manifest.py"


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
        relative_path=lambda wc: wc.relpath,
    script:
        "../../scripts/download_file.py"
