# The cost before the run: `snakemake --cores 2 plan` reads the metadata, samples, and
# prints what the run would fetch per transfer mode (and the time at abc.link), the disk and
# memory it needs; no matrix is fetched. A full run makes the plan too (the report's card),
# while its subset jobs run: a matrix counts as cached if it was before the sample was drawn.

PLAN = {"text": f"{OUT['dir']}/plan.txt", "json": f"{STATE}/plan.json"}


rule make_plan:
    input:
        manifest=ancient(MANIFEST),
        cells=OUT["cells"],
        summary=OUT["summary"],
        rows=SAMPLE_ROWS,
        cell_metadata=cell_metadata_path,  # the files' cells, where no header is read
    output:
        **PLAN,
    log:
        f"{LOGS}/make_plan.log",
    localrule: True  # reads the matrices' headers: where the network is
    conda:
        "../../envs/abc.yaml"
    params:
        cluster_column=config["sampling"]["cluster_column"],
        dataset=DATASET.name,
        matrix_column=DATASET.cells.matrix,
        # what the plan's figures depend on besides its inputs
        abc={k: ABC[k] for k in ("transfer", "variant", "link", "stream", "download")},
    script:
        "../../scripts/make_plan.py"


# The target: always "runs" when asked for (no output), so the plan is printed at the end
# (messages.smk) even when it is up to date.
rule plan:
    input:
        **PLAN,
    log:
        f"{LOGS}/plan.log",
    localrule: True
    run:
        pass
