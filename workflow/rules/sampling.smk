# Stratified sampling: rare groups whole, the rest sampled to the target.

# The sampled cells' rows of the cell table (every column), for the result's obs: the
# cell table is read once per run, by sample_cells.
SAMPLE_ROWS = f"{STATE}/sample/cell_rows.arrow"
# what the cell table held: cells, and cells without a group (the report and uns say it)
SAMPLE_POPULATION = f"{STATE}/sample/population.json"


checkpoint sample_cells:
    input:
        cell_metadata=cell_metadata_path,
        taxonomy=taxonomy_path,
        membership=membership_path,
        embedding=embedding_path,
        cells_file=config["sampling"]["cells_file"] or [],
        within=config["sampling"]["within"] or [],
    output:
        cells=OUT["cells"],
        summary=OUT["summary"],
        levels=OUT["levels"],
        rows=SAMPLE_ROWS,
        population=SAMPLE_POPULATION,
        done=SAMPLE_DONE,
    log:
        f"{LOGS}/sample_cells.log",
    benchmark:
        f"{BENCH}/sample_cells.tsv"
    conda:
        "../../envs/abc.yaml"
    # one thread samples; the others check the cached matrices' MD5 meanwhile
    threads: 4  # scaled down to --cores
    resources:
        mem_mb=1500,
        runtime=30,
    params:
        sampling=config["sampling"],
        settings=SAMPLING_SETTINGS,
        dataset=DATASET.raw,
        manifest=MANIFEST,  # changes with the release only, as the settings do
    script:
        "../../scripts/sample_cells.py"
